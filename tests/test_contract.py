"""One contract over every door: the same series through every public entry point, held to the engine.

The fixtures (``SERIES``): three series under two key columns (``region``, ``host``) -- an hourly
seasonal series with spikes and a dip, an hourly series with one timestamp missing (a grid point
the model imputes) and a level shift, and a series of 5 points, which every door must refuse with
the engine's error code. Each job (entire detection, last-point detection, change points) and,
for detection, each method (``azure``, ``auto``) runs through:

engine single-series functions (the reference), engine batch functions, the pandas accessor, the
polars namespace, DuckDB SQL (the table macros of docs/duckdb.md), the CLI on a DuckDB file, the
REST server (HTTP), the Airflow operators (``execute`` on a DuckDB connection from an
``AIRFLOW_CONN_*`` variable), Spark ``local[2]`` and a Dask LocalCluster.

A door passes when it has the reference's series, each valid series' flags exactly, its numbers
within 1e-9 relative, and the invalid series' error code. Only public entry points are used, so
the suite holds whatever the modules behind them are called. A new door gets every check by
adding one function to ``DOORS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

import ad_pipeline as ad
from ad_pipeline.engine.result import column_attributes, columns_for
from ad_pipeline.errors import AnomalyDetectorError

KEYS = ["region", "host"]
T0 = np.datetime64("2024-01-01T00:00", "us")
HOUR = np.timedelta64(1, "h")
Key = tuple[str, int]


def _seasonal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 20 + 5 * np.sin(2 * np.pi * t / 24) + 0.1 * t / 24 + rng.normal(0, 0.4, n)


def _series() -> dict[Key, tuple[np.ndarray, np.ndarray]]:
    """key -> (timestamps datetime64[us], values): the suite's fixtures."""
    spiky = _seasonal(24 * 8, seed=1)
    spiky[[50, 131]] += 9.0
    spiky[170] -= 9.0
    shifted = _seasonal(24 * 8, seed=2)
    shifted[100:] += 12.0
    shifted[60] += 8.0
    gap = np.ones(len(shifted), dtype=bool)
    gap[77] = False  # one timestamp missing
    grid = T0 + np.arange(24 * 8) * HOUR
    return {
        ("eu", 1): (grid, spiky),
        ("eu", 2): (grid[gap], shifted[gap]),
        ("us", 1): (grid[:5], np.array([3.0, 4.0, 3.5, 4.2, 3.9])),  # too short: InvalidSeries
    }


SERIES = _series()

# The result columns of every door and the engine result attribute each one holds (the one
# result-column table, engine/result.py; docs/dataframes.md and the others list the same).
JOBS = ("entire", "last", "change_points")
COLUMNS: dict[str, dict[str, str]] = {job: column_attributes(job) for job in JOBS}
FLAGS = {"is_anomaly", "is_positive_anomaly", "is_negative_anomaly", "is_change_point", "period", "suggested_window"}
ENGINE = {"entire": ad.detect_entire, "last": ad.detect_last, "change_points": ad.detect_change_points}
BATCH = {"entire": ad.detect_entire_batch, "last": ad.detect_last_batch, "change_points": ad.detect_change_points_batch}
FRAME_METHOD = {"entire": "detect", "last": "detect_last", "change_points": "change_points"}
CASES = [("entire", "azure"), ("entire", "auto"), ("last", "azure"), ("last", "auto"), ("change_points", None)]


@dataclass
class Answer:
    """One series' answer at a door: an error code, or the result columns (arrays over its rows)."""

    code: str | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)


Answers = dict[Key, Answer]


def params(method: str | None) -> dict[str, Any]:
    return {} if method is None else {"method": method}


def long_frame() -> pd.DataFrame:
    """Every series as rows ``region, host, ts, value`` (rows of a series in time order)."""
    parts = [
        pd.DataFrame({"region": k[0], "host": np.int64(k[1]), "ts": ts, "value": v}) for k, (ts, v) in SERIES.items()
    ]
    return pd.concat(parts, ignore_index=True)


def from_result(job: str, result: Any) -> Answer:
    """An engine result object as an Answer (scalars of a last-point result as arrays of one)."""
    cols = {}
    for col, attr in COLUMNS[job].items():
        if job == "change_points" and col == "period":
            continue
        got = np.asarray(getattr(result, attr))
        cols[col] = got.reshape(1) if job == "last" else got
    if job == "entire":
        cols["period"] = np.full(len(cols["is_anomaly"]), cols["period"])
    return Answer(columns=cols)


def reference(job: str, method: str | None, **extra: Any) -> Answers:
    """The engine's single-series functions, one call per series: the answer every door must give."""
    out: Answers = {}
    for key, (ts, values) in SERIES.items():
        try:
            out[key] = from_result(job, ENGINE[job](values, ts, **params(method), **extra))
        except AnomalyDetectorError as err:
            out[key] = Answer(code=err.code)
    return out


def from_rows(df: pd.DataFrame, job: str, ts: str = "ts") -> Answers:
    """A door's result rows (key columns, timestamp, result columns, ``anomaly_error_code``) by series."""
    out: Answers = {}
    for key, rows in df.groupby(KEYS, sort=True, dropna=False):
        rows = rows.sort_values(ts, kind="stable")
        k = (str(key[0]), int(key[1]))
        code = rows["anomaly_error_code"].iloc[0] if "anomaly_error_code" in rows else None
        if isinstance(code, str):
            out[k] = Answer(code=code)
            continue
        out[k] = Answer(columns={c: rows[c].to_numpy() for c in COLUMNS[job]})
    return out


def assert_same(got: Answers, want: Answers, door: str) -> None:
    assert sorted(got) == sorted(want), f"{door}: series {sorted(got)} instead of {sorted(want)}"
    for key, w in want.items():
        g = got[key]
        assert g.code == w.code, f"{door}, series {key}: error code {g.code!r} instead of the engine's {w.code!r}"
        if w.code is not None:
            continue
        for col, expected in w.columns.items():
            assert col in g.columns, f"{door}, series {key}: no column {col!r}"
            actual = np.asarray(g.columns[col])
            assert actual.shape == expected.shape, f"{door}, series {key}, {col}: shape {actual.shape} != {expected.shape}"
            if col in FLAGS:
                assert np.array_equal(actual.astype(expected.dtype), expected), f"{door}, series {key}, {col} differ"
            else:
                np.testing.assert_allclose(
                    actual.astype(np.float64), expected, rtol=1e-9, atol=0, err_msg=f"{door}, series {key}, {col}"
                )


# --------------------------------------------------------------------------- the doors


def door_engine_batch(job: str, method: str | None, **_: Any) -> Answers:
    keys = list(SERIES)
    offsets = np.cumsum([0] + [len(SERIES[k][1]) for k in keys])
    values = np.concatenate([SERIES[k][1] for k in keys])
    ts = np.concatenate([SERIES[k][0] for k in keys])
    batch = BATCH[job](values, offsets, ts, errors="coerce", **params(method))
    out: Answers = {}
    for i, key in enumerate(keys):
        if batch.error_code[i] is not None:
            out[key] = Answer(code=batch.error_code[i])
        else:
            out[key] = from_result(job, batch.series(i))
    return out


def door_pandas(job: str, method: str | None, **_: Any) -> Answers:
    df = long_frame()
    res = getattr(df.anomaly, FRAME_METHOD[job])(value="value", timestamp="ts", by=KEYS, errors="coerce", **params(method))
    return from_rows(res, job)


def door_polars(job: str, method: str | None, **_: Any) -> Answers:
    pl = pytest.importorskip("polars")
    df = pl.from_pandas(long_frame())
    res = getattr(df.anomaly, FRAME_METHOD[job])(value="value", timestamp="ts", by=KEYS, errors="coerce", **params(method))
    return from_rows(res.to_pandas(), job)


MACRO = {"entire": "anomaly_detect", "last": "anomaly_detect_last", "change_points": "anomaly_change_points"}


def _duckdb_metrics(path: Path | None = None) -> Any:
    """A DuckDB connection (a file, or in memory with the functions registered) holding ``metrics``."""
    duckdb = pytest.importorskip("duckdb")
    import ad_pipeline.duckdb as add

    con = duckdb.connect(str(path) if path else ":memory:")
    if path is None:
        add.register(con)
    frame = long_frame()  # noqa: F841 - read by name below
    con.execute("CREATE TABLE metrics AS SELECT region, host, ts, value FROM frame")
    return con


def _sql_args(method: str | None) -> str:
    return "".join(f", {k} := '{v}'" for k, v in params(method).items())


def _duckdb_file(path: Path) -> None:
    _duckdb_metrics(path).close()


def door_duckdb(job: str, method: str | None, **_: Any) -> Answers:
    con = _duckdb_metrics()
    args = _sql_args(method)
    sql = f"FROM {MACRO[job]}('metrics', key := ['region', 'host'], ts := 'ts', value := 'value', errors := 'coerce'{args})"
    return from_rows(con.sql(sql).df(), job)


LIST_FUNCTION = {"entire": "anomaly_detect_list", "last": "anomaly_detect_last_list",
                 "change_points": "anomaly_change_points_list"}  # fmt: skip


def door_duckdb_list(job: str, method: str | None, **_: Any) -> Answers:
    """The list functions under the macros (docs/duckdb.md), one series per ``GROUP BY`` row."""
    con = _duckdb_metrics()
    args = _sql_args(method)
    per_series = (f"SELECT region, host, list(ts ORDER BY ts) AS t, {LIST_FUNCTION[job]}(list(value ORDER BY ts), "
                  f"list(ts ORDER BY ts), errors := 'coerce'{args}) AS r FROM metrics GROUP BY region, host")  # fmt: skip
    if job == "last":
        sql = f"SELECT region, host, t[-1] AS ts, unnest(r) FROM ({per_series})"
    else:
        sql = f"SELECT region, host, unnest(t) AS ts, unnest(r, recursive := true) FROM ({per_series})"
    return from_rows(con.sql(sql).df(), job)


CLI_COMMAND = {"entire": "scan", "last": "last", "change_points": "change-points"}


def door_cli(job: str, method: str | None, *, tmp_path: Path, **_: Any) -> Answers:
    duckdb = pytest.importorskip("duckdb")
    from ad_pipeline.cli import main

    db = tmp_path / "warehouse.duckdb"
    _duckdb_file(db)
    argv = [CLI_COMMAND[job], "--db", str(db), "--table", "metrics", "--key", "region", "--key", "host",
            "--timestamp", "ts", "--value", "value", "--into", "results", "--quiet"]  # fmt: skip
    for name, value in params(method).items():
        argv += ["--" + name.replace("_", "-"), value]
    assert main(argv) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        return from_rows(con.sql("FROM results").df(), job)


REST_PATH = {"entire": "entire", "last": "last", "change_points": "changepoint"}
REST_NAMES = {  # Azure's JSON field -> result column
    name: c.name for job in JOBS for c in columns_for(job) if (name := c.azure_name(job)) is not None
}


def door_rest(job: str, method: str | None, *, live_url: str, granularity: str | None = "hourly", **_: Any) -> Answers:
    """One HTTP request per series; the Azure JSON answer read back into the result columns it carries.

    The granularity is given (``hourly``, what the other doors infer): without one, the REST door
    orders the points by their timestamps and ignores the gaps, as Azure does (docs/rest.md), which
    ``test_rest_without_a_granularity_ignores_gaps_as_azure_does`` holds to the engine.
    """
    import requests

    from tests.support.rest_server import HEADERS

    out: Answers = {}
    for key, (ts, values) in SERIES.items():
        body = {"series": [{"timestamp": f"{t}Z", "value": float(v)} for t, v in zip(ts.astype("datetime64[s]"), values, strict=True)],
                **params(method), **({"granularity": granularity} if granularity else {})}  # fmt: skip
        r = requests.post(f"{live_url}/anomalydetector/v1.1/timeseries/{REST_PATH[job]}/detect", json=body,
                          headers=HEADERS, timeout=60)  # fmt: skip
        answer = r.json()
        if r.status_code != 200:
            out[key] = Answer(code=answer["code"])
            continue
        n = 1 if job == "last" else len(values)
        cols = {REST_NAMES[name]: np.broadcast_to(np.asarray(v), (n,)) for name, v in answer.items()}
        if job == "change_points":
            cols.pop("period")
        out[key] = Answer(columns=cols)
    return out


def _without_rest_absent(want: Answers) -> Answers:
    """The reference without the columns the Azure JSON does not carry (boundaries: value -/+ margin)."""
    out = {}
    for key, a in want.items():
        cols = {c: v for c, v in a.columns.items() if c not in ("lower_boundary", "upper_boundary")}
        out[key] = Answer(a.code, cols)
    return out


OPERATOR = {"entire": "AnomalyDetectionOperator", "last": "LastPointAnomalyOperator", "change_points": "ChangePointOperator"}


def door_airflow(
    job: str, method: str | None, *, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int | str = 24 * 8, **_: Any
) -> Answers:
    """The operator's ``execute`` on a DuckDB file; invalid series from the summary it returns.

    The last-point operator judges the newest point from the newest ``window`` rows of a series:
    here every row of the longest series, so that it answers as the engine does on the whole series
    (its default, ``"suggested"``, is held by ``test_airflow_last_point_judges_the_suggested_window``).
    """
    from tests.support import airflow_env  # noqa: F401  (before Airflow's first import)

    pytest.importorskip("airflow.sdk")
    duckdb = pytest.importorskip("duckdb")
    import ad_pipeline.airflow as ada

    db = tmp_path / "warehouse.duckdb"
    _duckdb_file(db)
    monkeypatch.setenv("AIRFLOW_CONN_CONTRACT_DUCKDB", "duckdb://" + quote(str(db), safe=""))
    extra: dict[str, Any] = {"window": window} if job == "last" else {}
    op = getattr(ada, OPERATOR[job])(
        task_id="contract", conn_id="contract_duckdb", table="metrics", key=KEYS, timestamp="ts", value="value",
        target_table="results", **extra, **params(method),
    )  # fmt: skip
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    summary = op.execute({"data_interval_start": start, "data_interval_end": start + dt.timedelta(days=9),
                          "run_id": "contract"})  # fmt: skip
    with duckdb.connect(str(db), read_only=True) as con:
        out = from_rows(con.sql("FROM results").df(), job)
    for err in summary["errors"]:
        key = err["key"]
        out[(str(key[0]), int(key[1]))] = Answer(code=err["code"])
    return out


def door_spark(job: str, method: str | None, *, request: pytest.FixtureRequest, **_: Any) -> Answers:
    spark = request.getfixturevalue("spark")
    import ad_pipeline.spark as ads

    sdf = spark.createDataFrame(long_frame())
    res = getattr(ads, FRAME_METHOD[job])(sdf, value="value", timestamp="ts", by=KEYS, errors="coerce", **params(method))
    return from_rows(res.toPandas(), job)


def door_dask(job: str, method: str | None, *, request: pytest.FixtureRequest, **_: Any) -> Answers:
    request.getfixturevalue("dask_client")
    dd = pytest.importorskip("dask.dataframe")
    ddf = dd.from_pandas(long_frame(), npartitions=2)
    res = getattr(ddf.anomaly, FRAME_METHOD[job])(value="value", timestamp="ts", by=KEYS, errors="coerce", **params(method))
    return from_rows(res.compute(), job)


DOORS: dict[str, Callable[..., Answers]] = {
    "engine_batch": door_engine_batch,
    "pandas": door_pandas,
    "polars": door_polars,
    "duckdb_sql": door_duckdb,
    "duckdb_list": door_duckdb_list,
    "cli": door_cli,
    "rest": door_rest,
    "airflow": door_airflow,
    "spark": door_spark,
    "dask": door_dask,
}


@pytest.fixture(scope="module")
def references() -> dict[tuple[str, str | None], Answers]:
    return {(job, method): reference(job, method) for job, method in CASES}


def test_the_fixtures_cover_what_the_contract_promises(references: dict[tuple[str, str | None], Answers]) -> None:
    """The reference has anomalies, a change point and one refused series, so every door is tested on each."""
    entire = references[("entire", "azure")]
    assert entire[("eu", 1)].columns["is_anomaly"].sum() >= 3
    assert entire[("us", 1)].code == "InvalidSeries"
    assert references[("change_points", None)][("eu", 2)].columns["is_change_point"].any()
    assert len(SERIES[("eu", 2)][0]) == 24 * 8 - 1  # the missing timestamp


@pytest.mark.parametrize(("job", "method"), CASES, ids=[f"{j}-{m}" if m else j for j, m in CASES])
@pytest.mark.parametrize("door", list(DOORS))
def test_every_door_gives_the_engines_answer(
    door: str,
    job: str,
    method: str | None,
    references: dict[tuple[str, str | None], Answers],
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    want = references[(job, method)]
    extra: dict[str, Any] = {"request": request, "tmp_path": tmp_path, "monkeypatch": monkeypatch}
    if door == "rest":
        extra["live_url"] = request.getfixturevalue("live_url")
        want = _without_rest_absent(want)
    got = DOORS[door](job, method, **extra)
    assert_same(got, want, door)


@pytest.mark.parametrize(("job", "method"), CASES, ids=[f"{j}-{m}" if m else j for j, m in CASES])
def test_rest_without_a_granularity_ignores_gaps_as_azure_does(job: str, method: str | None, live_url: str) -> None:
    """docs/rest.md: the REST default granularity is ``none`` (Azure's), the Python API infers it instead."""
    got = door_rest(job, method, live_url=live_url, granularity=None)
    assert_same(got, _without_rest_absent(reference(job, method, granularity="none")), "rest without granularity")


@pytest.mark.parametrize("method", ["azure", "auto"])
def test_airflow_last_point_judges_the_suggested_window(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/airflow.md: with ``window="suggested"`` the newest point is judged from the newest
    ``suggested_window`` rows of its series (the engine's answer on the whole series says how many)."""
    want: Answers = {}
    for key, (ts, values) in SERIES.items():
        try:
            w = ad.detect_last(values, ts, method=method).suggested_window
            want[key] = from_result("last", ad.detect_last(values[-w:], ts[-w:], method=method))
        except AnomalyDetectorError as err:
            want[key] = Answer(code=err.code)
    got = door_airflow("last", method, tmp_path=tmp_path, monkeypatch=monkeypatch, window="suggested")
    assert_same(got, want, "airflow, window='suggested'")
