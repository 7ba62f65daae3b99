"""The DuckDB adapter in real DuckDB file databases: the SQL results are exactly the engine's."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ad_pipeline as ad
import ad_pipeline.duckdb as add

ENTIRE = ["is_anomaly", "is_positive_anomaly", "is_negative_anomaly", "expected_value", "lower_boundary",
          "upper_boundary", "lower_margin", "upper_margin", "severity", "period"]  # fmt: skip
ENTIRE_ATTR = {"expected_value": "expected_values", "lower_boundary": "lower_boundaries",
               "upper_boundary": "upper_boundaries", "lower_margin": "lower_margins", "upper_margin": "upper_margins"}  # fmt: skip
LAST = [*ENTIRE, "suggested_window"]


def _series(n_series: int = 4, seed: int = 0) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Hourly series of different lengths, each with one spike; series 'c' has two missing points."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_series):
        n = 60 + 7 * i
        t = np.arange(n)
        v = 10 + 3 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.2, n)
        v[20 + i] += 15
        if i == 2:
            v[[5, 33]] = np.nan
        ts = np.datetime64("2024-01-01T00:00", "us") + t.astype("timedelta64[h]")
        out.append((chr(ord("a") + i), ts, v))
    return out


def _create(
    con: duckdb.DuckDBPyConnection, name: str, series: list[tuple[str, np.ndarray, np.ndarray]]
) -> None:
    import pyarrow as pa

    keys = np.concatenate([[k] * len(v) for k, _, v in series]) if series else np.array([], dtype=object)
    ts = np.concatenate([t for _, t, _ in series]) if series else np.array([], dtype="datetime64[us]")
    v = np.concatenate([v for _, _, v in series]) if series else np.array([], dtype=float)
    order = np.random.default_rng(1).permutation(len(v))  # stored out of order: the macro sorts
    tbl = pa.table({"key": pa.array(keys[order], pa.string()), "ts": pa.array(ts[order], pa.timestamp("us")),
                    "value": pa.array(v[order], mask=np.isnan(v[order]))})  # fmt: skip
    con.register("__t", tbl)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM __t")
    con.unregister("__t")


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "warehouse.duckdb")
    con = add.connect(path)
    _create(con, "metrics", _series())
    yield con
    con.close()


def _flat(series):
    values = np.concatenate([v for _, _, v in series])
    ts = np.concatenate([t for _, t, _ in series])
    offsets = np.concatenate([[0], np.cumsum([len(v) for _, _, v in series])])
    return values, offsets, ts


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == b


def _check_entire_rows(rows, columns, res, series):
    assert len(rows) == sum(len(v) for _, _, v in series)
    i = 0
    for s, (key, ts, v) in enumerate(series):
        for j in range(len(v)):
            row = dict(zip(columns, rows[i], strict=True))
            assert row["key"] == key and np.datetime64(row["ts"], "us") == ts[j]
            assert _same(row["value"], None if np.isnan(v[j]) else v[j])
            for c in ENTIRE:
                want = res.period[s] if c == "period" else getattr(res, ENTIRE_ATTR.get(c, c))[i]
                assert _same(row[c], want.item()), (key, j, c, row[c], want)
            i += 1


@pytest.mark.parametrize("params", [{}, {"sensitivity": 95, "period": 12}, {"max_anomaly_ratio": 0.1,
                                                                             "boundary_version": "V2"}])  # fmt: skip
def test_anomaly_detect_macro_is_the_engine(db, params):
    series = _series()
    values, offsets, ts = _flat(series)
    res = ad.detect_entire_batch(values, offsets, ts, **params)
    named = "".join(f", {k} := {v!r}" for k, v in params.items())
    rel = db.sql(f"SELECT * FROM anomaly_detect('metrics'{named}) ORDER BY key, ts")
    assert rel.columns == ["key", "ts", "value", *ENTIRE]
    _check_entire_rows(rel.fetchall(), rel.columns, res, series)
    assert res.is_anomaly.any()  # the fixture has spikes: the comparison covers flagged rows


def test_last_macro_is_the_engine(db):
    series = _series()
    values, offsets, ts = _flat(series)
    res = ad.detect_last_batch(values, offsets, ts, sensitivity=90)
    rel = db.sql("SELECT * FROM anomaly_detect_last('metrics', sensitivity := 90) ORDER BY key")
    assert rel.columns == ["key", "ts", "value", *LAST]
    rows = rel.fetchall()
    assert [r[0] for r in rows] == [k for k, _, _ in series]
    for s, row in enumerate(rows):
        got = dict(zip(rel.columns, row, strict=True))
        assert np.datetime64(got["ts"], "us") == series[s][1][-1] and got["value"] == series[s][2][-1]
        for c in LAST:
            want = getattr(res, c)[s]
            assert _same(got[c], want.item()), (s, c)


def test_change_points_macro_is_the_engine(db):
    series = _series()
    values, offsets, ts = _flat(series)
    res = ad.detect_change_points_batch(values, offsets, ts)
    rel = db.sql("SELECT * FROM anomaly_change_points('metrics') ORDER BY key, ts")
    assert rel.columns == ["key", "ts", "value", "is_change_point", "change_point_confidence"]
    rows = rel.fetchall()
    assert [r[3] for r in rows] == res.is_change_point.tolist()
    assert all(_same(r[4], c) for r, c in zip(rows, res.confidence_scores.tolist(), strict=True))


def test_list_function_is_the_engine_with_per_series_parameters(db):
    # per-series sensitivity from a column: one UDF call, the engine gets a per-series list
    series = _series()
    values, offsets, ts = _flat(series)
    sens = [99, 80, 95, 60]
    res = ad.detect_entire_batch(values, offsets, ts, sensitivity=sens)
    rows = db.sql(
        "SELECT key, anomaly_detect_list(list(value ORDER BY ts), list(ts ORDER BY ts), "
        "sensitivity := CASE key WHEN 'a' THEN 99 WHEN 'b' THEN 80 WHEN 'c' THEN 95 ELSE 60 END) AS r "
        "FROM metrics GROUP BY key ORDER BY key"
    ).fetchall()
    flat = [p for _, r in rows for p in r]
    assert [p["is_anomaly"] for p in flat] == res.is_anomaly.tolist()
    assert all(_same(p["expected_value"], e) for p, e in zip(flat, res.expected_values.tolist(), strict=True))
    last = db.sql("SELECT anomaly_detect_last_list(list(value ORDER BY ts), list(ts ORDER BY ts)) FROM metrics "
                  "GROUP BY key ORDER BY key").fetchall()  # fmt: skip
    assert [r[0]["is_anomaly"] for r in last] == ad.detect_last_batch(values, offsets, ts).is_anomaly.tolist()


def test_many_series_span_several_udf_chunks(tmp_path):
    # > 2048 groups: DuckDB calls the UDF on several chunks. Most groups are too short (cheap engine
    # refusals), every 500th is a real series: each row must still get its own series' answer.
    n_groups, m = 2300, 40
    real = set(range(0, n_groups, 500))
    rng = np.random.default_rng(3)
    con = add.connect(str(tmp_path / "many.duckdb"))
    rows = [
        (g, i, float(v))
        for g in range(n_groups)
        for i, v in enumerate(rng.normal(size=m if g in real else 3))
    ]
    k, i, v = (list(c) for c in zip(*rows, strict=True))
    con.execute("CREATE TABLE t AS SELECT unnest(?::INTEGER[]) AS key, unnest(?::INTEGER[]) AS ts_i, "
                "unnest(?::DOUBLE[]) AS value", [k, i, v])  # fmt: skip
    con.execute("CREATE VIEW v AS SELECT key, TIMESTAMP '2024-01-01' + to_days(ts_i) AS ts, value FROM t")
    got = con.sql("SELECT key, is_anomaly, expected_value, anomaly_error FROM anomaly_detect('v', period := 0, "
                  "errors := 'coerce') ORDER BY key, ts").fetchall()  # fmt: skip
    assert len(got) == len(rows)
    for g in sorted(real):
        vals = np.array([v for k, _, v in rows if k == g])
        want = ad.detect_entire(vals, period=0)
        mine = [r for r in got if r[0] == g]
        assert [r[1] for r in mine] == want.is_anomaly.tolist()
        assert [r[2] for r in mine] == want.expected_values.tolist()
    refused = [r for r in got if r[0] not in real]
    assert all(r[1] is None and f"{{'key': {r[0]}}}" in r[3] for r in refused)
    con.close()


def test_reopened_database_needs_registering_again_and_then_works(tmp_path):
    path = str(tmp_path / "persist.duckdb")
    con = add.connect(path)
    _create(con, "metrics", _series())
    first = con.sql("SELECT * FROM anomaly_detect('metrics') ORDER BY key, ts").fetchall()
    con.close()
    plain = duckdb.connect(path)  # the file holds the data but no functions (they are TEMP)
    with pytest.raises(duckdb.CatalogException):
        plain.sql("SELECT * FROM anomaly_detect('metrics')").fetchall()
    assert plain.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name LIKE '%anomaly%'"
    ).fetchall() == [(0,)]
    add.register(plain)
    add.register(plain)  # twice is harmless
    assert plain.sql("SELECT * FROM anomaly_detect('metrics') ORDER BY key, ts").fetchall() == first
    plain.close()
    ro = add.connect(path, read_only=True)  # registering never writes to the file
    assert ro.sql("SELECT * FROM anomaly_detect('metrics') ORDER BY key, ts").fetchall() == first
    ro.close()


@pytest.mark.parametrize(
    ("param", "code"),
    [
        ("sensitivity := 120", "InvalidModelArgument: The 'sensitivity' field"),
        ("max_anomaly_ratio := 0.7", "InvalidModelArgument: The 'max_anomaly_ratio' field"),
        ("granularity := 'fortnightly'", "InvalidGranularity"),
        ("period := -1", "InvalidPeriod"),
        ("impute_mode := 'guess'", "InvalidImputeMode"),
        ("impute_mode := 'fixed'", "InvalidImputeFixedValue"),
        ("boundary_version := 'V9'", "InvalidBoundaryVersion"),
        ("custom_interval := 0", "InvalidCustomInterval"),
        ("method := 'magic'", "BadArgument: The 'method' field"),
        ("errors := 'ignore'", "BadArgument: The 'errors' argument"),
    ],
)
def test_bad_parameters_fail_with_the_engine_code(db, param, code):
    with pytest.raises(duckdb.Error) as info:
        db.sql(f"SELECT * FROM anomaly_detect('metrics', {param})").fetchall()
    assert code in str(info.value)


def test_change_point_parameter_errors(db):
    with pytest.raises(duckdb.Error, match="InvalidModelArgument: The 'threshold' field"):
        db.sql("SELECT * FROM anomaly_change_points('metrics', threshold := 2)").fetchall()


def test_short_series_raise_or_coerce(db):
    _create(db, "short", [*_series(2), ("tiny", np.datetime64("2024-01-01T00:00", "us") + np.arange(5).astype("timedelta64[h]"),
                                        np.arange(5.0))])  # fmt: skip
    with pytest.raises(
        duckdb.Error, match=r"InvalidSeries: .*at least 12 points.*series \"\{'key': tiny\}\""
    ):
        db.sql("SELECT * FROM anomaly_detect('short')").fetchall()
    rel = db.sql("SELECT * FROM anomaly_detect('short', errors := 'coerce') ORDER BY key, ts")
    assert rel.columns[-2:] == ["anomaly_error_code", "anomaly_error"]
    rows = [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]
    tiny = [r for r in rows if r["key"] == "tiny"]
    assert len(tiny) == 5 and all(r["anomaly_error_code"] == "InvalidSeries" for r in tiny)
    assert all(r["is_anomaly"] is None and r["expected_value"] is None and r["period"] is None for r in tiny)
    assert all(
        r["anomaly_error_code"] is None and r["is_anomaly"] is not None for r in rows if r["key"] != "tiny"
    )
    last = db.sql("SELECT key, is_anomaly, anomaly_error_code FROM anomaly_detect_last('short', errors := 'coerce') "
                  "ORDER BY key").fetchall()  # fmt: skip
    assert last[-1] == ("tiny", None, "InvalidSeries") and last[0][2] is None


def test_null_values_are_missing_points_kept_and_never_flagged(db):
    rows = db.sql("SELECT ts, value, is_anomaly, expected_value FROM anomaly_detect('metrics') WHERE key = 'c' "
                  "ORDER BY ts").fetchall()  # fmt: skip
    assert len(rows) == 60 + 14
    missing = [r for r in rows if r[1] is None]
    assert len(missing) == 2 and all(r[2] is False for r in missing)


def test_empty_table_and_all_null_group(db):
    db.execute("CREATE TABLE empty (key VARCHAR, ts TIMESTAMP, value DOUBLE)")
    rel = db.sql("SELECT * FROM anomaly_detect('empty')")
    assert rel.fetchall() == [] and rel.columns == ["key", "ts", "value", *ENTIRE]
    assert db.sql("SELECT * FROM anomaly_detect_last('empty')").fetchall() == []
    assert db.sql("SELECT * FROM anomaly_change_points('empty')").fetchall() == []
    db.execute(
        "INSERT INTO empty SELECT 'nothing', TIMESTAMP '2024-01-01' + to_hours(i), NULL FROM range(30) r(i)"
    )
    with pytest.raises(duckdb.Error, match="InvalidSeries"):
        db.sql("SELECT * FROM anomaly_detect('empty')").fetchall()
    rows = db.sql("SELECT anomaly_error_code FROM anomaly_detect('empty', errors := 'coerce')").fetchall()
    assert rows == [("InvalidSeries",)] * 30
    # NULL lists in the list function give NULL, not an error
    assert db.execute(
        "SELECT anomaly_detect_list(NULL::DOUBLE[]), anomaly_detect_last_list(NULL)"
    ).fetchall() == [(None, None)]


def test_sources_views_parquet_multi_key_and_any_key_type(db, tmp_path):
    series = _series()
    values, offsets, ts = _flat(series)
    want = ad.detect_entire_batch(values, offsets, ts).is_anomaly.tolist()
    parquet = str(tmp_path / "m.parquet")
    db.execute(f"COPY metrics TO '{parquet}' (FORMAT parquet)")
    db.execute(
        "CREATE VIEW mv AS SELECT ascii(key) AS code, 'x' AS region, ts AS \"Time\", value AS v FROM metrics"
    )
    queries = {
        "parquet": f"SELECT is_anomaly FROM anomaly_detect('{parquet}') ORDER BY key, ts",
        "view, int key, odd names": "SELECT is_anomaly FROM anomaly_detect('mv', key := 'CODE', ts := 'time', "
                                    "value := 'V') ORDER BY code, \"Time\"",
        "two keys": "SELECT is_anomaly FROM anomaly_detect('mv', key := ['region', 'code'], ts := 'Time', "
                    "value := 'v') ORDER BY code, \"Time\"",
    }  # fmt: skip
    for name, q in queries.items():
        assert [r[0] for r in db.sql(q).fetchall()] == want, name
    rel = db.sql(
        "SELECT * FROM anomaly_detect('mv', key := ['region', 'code'], ts := 'Time', value := 'v') LIMIT 1"
    )
    assert rel.columns[:4] == ["code", "region", "Time", "v"]  # names and types of the source kept
    assert [str(t) for t in rel.types[:2]] == ["INTEGER", "VARCHAR"]


def test_missing_column_is_named_in_the_error(db):
    with pytest.raises(duckdb.BinderException, match="nope"):
        db.sql("SELECT * FROM anomaly_detect('metrics', value := 'nope')").fetchall()


def test_without_timestamps_the_list_is_a_plain_grid(db):
    x = [1.0, 2.0, 3.0, 2.0] * 6
    x[9] = 30.0
    got = db.execute("SELECT anomaly_detect_list(?::DOUBLE[], sensitivity := 95)", [x]).fetchall()[0][0]
    want = ad.detect_entire(np.array(x), sensitivity=95)
    assert [p["is_anomaly"] for p in got] == want.is_anomaly.tolist()


def test_mismatched_timestamps_are_refused(db):
    with pytest.raises(
        duckdb.Error, match="BadArgument: The 'timestamps' list must hold one timestamp per value"
    ):
        db.sql("SELECT anomaly_detect_list(range(24)::DOUBLE[], [TIMESTAMP '2024-01-01'])").fetchall()


@pytest.fixture(scope="module")
def mem_con():
    con = add.connect()
    yield con
    con.close()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=4),
    data=st.data(),
)
def test_property_macro_equals_engine_for_any_small_table(mem_con, lengths, data):
    # any lengths (too short ones included, coerced), NaN anywhere: the macro gives the engine's answer
    values = np.array(
        data.draw(
            st.lists(
                st.one_of(st.floats(-1e3, 1e3), st.just(float("nan"))),
                min_size=sum(lengths),
                max_size=sum(lengths),
            )
        )  # fmt: skip
    )
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ts = np.concatenate(
        [np.datetime64("2024-01-01", "us") + np.arange(n).astype("timedelta64[D]") for n in lengths]
    )
    series = [
        (f"k{i:02d}", ts[a:b], values[a:b])
        for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:], strict=True))
    ]
    _create(mem_con, "prop", series)
    res = ad.detect_entire_batch(values, offsets, ts, errors="coerce")
    rel = mem_con.sql("SELECT * FROM anomaly_detect('prop', errors := 'coerce') ORDER BY key, ts")
    rows = rel.fetchall()
    assert len(rows) == len(values)
    valid = np.repeat(res.valid, lengths)
    for i, row in enumerate(rows):
        got = dict(zip(rel.columns, row, strict=True))
        if not valid[i]:
            assert (
                got["is_anomaly"] is None
                and got["anomaly_error_code"] == res.error_code[np.searchsorted(offsets, i, "right") - 1]
            )
            continue
        assert got["is_anomaly"] == bool(res.is_anomaly[i]) and got["anomaly_error_code"] is None
        assert _same(got["expected_value"], res.expected_values[i].item())
        assert _same(got["severity"], res.severity[i].item())
