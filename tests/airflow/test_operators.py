"""The operators against a real DuckDB file and a real (throwaway) PostgreSQL server.

Operators run with ``operator.execute(context)``; connections come from ``AIRFLOW_CONN_*``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

import ad_pipeline as ad

Warehouse = Any  # the `wh` fixtures' object (conftest.Warehouse)

pytest.importorskip("airflow.sdk")

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException  # noqa: E402

from ad_pipeline.airflow import (  # noqa: E402
    AnomalyDetectionOperator,
    ChangePointOperator,
    LastPointAnomalyOperator,
)

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 1)
HOURS = 24 * 8
KEYS = ["h0", "h1", "h2", "h3", "h4"]
TARGET_DDL = """CREATE TABLE {target} (host VARCHAR, ts TIMESTAMP, value DOUBLE PRECISION,
 is_anomaly BOOLEAN, is_positive_anomaly BOOLEAN, is_negative_anomaly BOOLEAN,
 expected_value DOUBLE PRECISION, lower_boundary DOUBLE PRECISION, upper_boundary DOUBLE PRECISION,
 lower_margin DOUBLE PRECISION, upper_margin DOUBLE PRECISION, severity DOUBLE PRECISION, period BIGINT,
 run_id VARCHAR, detected_at TIMESTAMP WITH TIME ZONE{extra})"""


def series_values(k: int, n: int = HOURS) -> np.ndarray:
    rng = np.random.default_rng(k)
    v = 10 + 2 * np.sin(np.arange(n) * 2 * np.pi / 24) + rng.normal(0, 0.2, n)
    v[60 + 7 * k] += 15  # one obvious spike per series
    return v


def make_metrics(wh: Warehouse, table: str = "metrics", value_col: str = "cpu", keys: list[str] = KEYS) -> None:
    q = wh.quote
    wh.run(f"CREATE TABLE {q(table)} (host VARCHAR, ts TIMESTAMP, {q(value_col)} DOUBLE PRECISION)")
    rows = []
    for k, key in enumerate(keys):
        v = series_values(k)
        rows += [(key, T0 + dt.timedelta(hours=i), float(v[i])) for i in range(HOURS)]
    wh.executemany(f"INSERT INTO {q(table)} VALUES (?, ?, ?)", rows)


def ctx(day0: int, day1: int, run_id: str = "run") -> dict[str, Any]:
    return {
        "data_interval_start": (T0 + dt.timedelta(days=day0)).replace(tzinfo=UTC),
        "data_interval_end": (T0 + dt.timedelta(days=day1)).replace(tzinfo=UTC),
        "run_id": run_id,
    }


def scan(wh: Warehouse, **kw: Any) -> AnomalyDetectionOperator:
    args: dict[str, Any] = dict(
        task_id="scan", conn_id=wh.conn_id, table="metrics", key="host", timestamp="ts", value="cpu",
        target_table="metrics_anomalies", sensitivity=95,
    )
    args.update(kw)
    return AnomalyDetectionOperator(**args)


# --------------------------------------------------------------------------- provider


def test_provider_info_is_registered_and_plain() -> None:
    from importlib.metadata import entry_points

    eps = [e for e in entry_points(group="apache_airflow_provider") if e.value.startswith("ad_pipeline")]
    assert len(eps) == 1
    info = eps[0].load()()
    # Airflow refuses a provider whose package-name is not the name of the distribution that ships it
    assert isinstance(info, dict) and info["package-name"] == eps[0].dist.name == "ad-pipeline-anomaly"
    assert info["operators"][0]["python-modules"] == ["ad_pipeline.airflow.operators", "ad_pipeline.airflow.tabular"]


# --------------------------------------------------------------------------- idempotence and parity


def test_rerun_same_interval_leaves_one_row_per_point(wh: Warehouse) -> None:
    make_metrics(wh)
    op = scan(wh, lookback=dt.timedelta(days=2))
    first = op.execute(ctx(3, 5, "a"))
    second = op.execute(ctx(3, 5, "b"))
    assert first["points"] == second["points"] == len(KEYS) * 48
    n, distinct, runs = wh.run(
        "SELECT count(*), count(DISTINCT host || CAST(ts AS VARCHAR)), count(DISTINCT run_id) FROM metrics_anomalies"
    )[0]
    assert n == distinct == len(KEYS) * 48 and runs == 1
    lo, hi = wh.run("SELECT min(ts), max(ts) FROM metrics_anomalies")[0]
    assert lo == T0 + dt.timedelta(days=3) and hi == T0 + dt.timedelta(days=5, hours=-1)


def test_backfill_three_intervals_gives_the_union(wh: Warehouse) -> None:
    make_metrics(wh)
    op = scan(wh, lookback=dt.timedelta(days=2))
    for day in (2, 3, 4):
        op.execute(ctx(day, day + 1, f"run{day}"))
    op.execute(ctx(3, 4, "run3"))  # a re-run in the middle of the backfill
    n, distinct = wh.run("SELECT count(*), count(DISTINCT host || CAST(ts AS VARCHAR)) FROM metrics_anomalies")[0]
    assert n == distinct == len(KEYS) * 72
    per_run = dict(wh.run("SELECT run_id, count(*) FROM metrics_anomalies GROUP BY run_id"))
    assert per_run == {"run2": 120, "run3": 120, "run4": 120}


def test_results_equal_a_direct_engine_call(duckdb_wh: Warehouse) -> None:
    wh = duckdb_wh
    make_metrics(wh)
    scan(wh).execute(ctx(0, 8))
    rows = wh.run("SELECT host, is_anomaly, expected_value, upper_boundary, period FROM metrics_anomalies ORDER BY host, ts")
    values = np.concatenate([series_values(k) for k in range(len(KEYS))])
    ts = np.tile(np.array([T0 + dt.timedelta(hours=i) for i in range(HOURS)], dtype="datetime64[ns]"), len(KEYS))
    res = ad.detect_entire_batch(values, np.arange(len(KEYS) + 1) * HOURS, ts, sensitivity=95)
    assert [r[1] for r in rows] == res.is_anomaly.tolist()
    np.testing.assert_allclose([r[2] for r in rows], res.expected_values)
    np.testing.assert_allclose([r[3] for r in rows], res.upper_boundaries)
    assert {r[4] for r in rows} == set(res.period.tolist())


def test_write_back_fills_the_window_in_place(wh: Warehouse) -> None:
    make_metrics(wh)
    summary = scan(wh, target_table=None, write_back="columns").execute(ctx(2, 4))
    assert summary["rows_written"] == len(KEYS) * 48
    filled, total = wh.run("SELECT count(is_anomaly), count(*) FROM metrics")[0]
    assert (filled, total) == (len(KEYS) * 48, len(KEYS) * HOURS)
    outside = wh.run(
        "SELECT count(*) FROM metrics WHERE is_anomaly IS NOT NULL AND (ts < ? OR ts >= ?)".replace(
            "?", "?" if wh.kind == "duckdb" else "%s"),
        [T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=4)],
    )[0][0]
    assert outside == 0
    cols = {r[0] for r in wh.run("SELECT column_name FROM information_schema.columns WHERE table_name = 'metrics'")}
    assert {"is_anomaly", "upper_boundary", "severity", "period", "run_id", "detected_at"} <= cols


def test_partitions_split_the_keys_exactly_once(wh: Warehouse) -> None:
    make_metrics(wh, keys=[f"k{i}" for i in range(12)])
    seen: list[int] = []
    for part in range(3):
        s = scan(wh, partitions=3, partition=part, chunk_rows=100).execute(ctx(0, 8, f"p{part}"))
        seen.append(s["series"])
    assert sum(seen) == 12 and all(n < 12 for n in seen)
    assert wh.run("SELECT count(*), count(DISTINCT host) FROM metrics_anomalies")[0] == (12 * HOURS, 12)


def test_invalid_series_are_reported_with_their_code(wh: Warehouse) -> None:
    make_metrics(wh)
    wh.run("INSERT INTO metrics VALUES ('tiny', TIMESTAMP '2024-01-01 00:00:00', 1.0)")
    summary = scan(wh).execute(ctx(0, 8))
    assert summary["invalid_series"] == 1
    assert summary["errors"][0]["key"] == "tiny" and summary["errors"][0]["code"] == "InvalidSeries"
    assert summary["series"] == len(KEYS) + 1


# --------------------------------------------------------------------------- atomic writes


def _constrained_target(wh: Warehouse) -> None:
    """The documented results schema, plus a CHECK that refuses the rows of run 'bad' for key h3."""
    wh.run(TARGET_DDL.format(target="metrics_anomalies", extra=", CHECK (run_id <> 'bad' OR host <> 'h3')"))


def test_failure_in_the_middle_of_the_write_leaves_the_target_unchanged(wh: Warehouse) -> None:
    make_metrics(wh)
    _constrained_target(wh)
    scan(wh).execute(ctx(0, 8, "good"))
    before = wh.checksum("metrics_anomalies")
    assert before[0] == len(KEYS) * HOURS
    # chunks of one series: h0..h2 are deleted and rewritten before h3 violates the constraint;
    # the database's own error reaches the task, which fails without retry (a rerun hits it again)
    with pytest.raises(AirflowFailException, match="(?i)check constraint") as err:
        scan(wh, chunk_rows=HOURS, sensitivity=80).execute(ctx(0, 8, "bad"))
    assert "Current transaction is aborted" not in str(err.value)
    assert wh.checksum("metrics_anomalies") == before


def test_violation_on_the_500th_row_and_a_dropped_connection_roll_back(postgres_wh: Warehouse) -> None:
    wh = postgres_wh
    make_metrics(wh)
    scan(wh).execute(ctx(0, 8, "good"))
    before = wh.checksum("metrics_anomalies")
    wh.run("CREATE SEQUENCE ad_rows")
    # a trigger refusing row 500 is a refusal (fails without retry, its message reaches the task);
    # a connection dropped at row 500 is a passing fault (re-raised as is: Airflow may retry)
    for action, refused in (("RAISE EXCEPTION 'injected failure on row 500'", True),
                            ("PERFORM pg_terminate_backend(pg_backend_pid())", False)):
        wh.run(f"""CREATE OR REPLACE FUNCTION ad_fail() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF nextval('ad_rows') % 1000 = 500 THEN {action}; END IF; RETURN NEW; END $$""")
        wh.run("DROP TRIGGER IF EXISTS ad_fail ON metrics_anomalies")
        wh.run("CREATE TRIGGER ad_fail BEFORE INSERT ON metrics_anomalies FOR EACH ROW EXECUTE FUNCTION ad_fail()")
        wh.run("SELECT setval('ad_rows', 1000)")
        with pytest.raises(Exception) as err:
            scan(wh, sensitivity=80).execute(ctx(0, 8, "bad"))
        assert isinstance(err.value, AirflowFailException) == refused
        assert not refused or "injected failure on row 500" in str(err.value)
        assert wh.checksum("metrics_anomalies") == before


def _failed_write_backs_roll_back(wh: Warehouse, key_index: bool) -> None:
    """write_back='columns': a constraint violated by key h3 of run 'bad' and, on PostgreSQL, a
    connection dropped mid-UPDATE, both leave the source table as it was."""
    q = wh.quote
    wh.run("CREATE TABLE metrics (host VARCHAR, ts TIMESTAMP, cpu DOUBLE PRECISION, run_id VARCHAR, "
           "CHECK (run_id <> 'bad' OR host <> 'h3'))")
    if key_index:  # each chunk's UPDATE runs at once: h0..h2 are updated before h3 fails
        wh.run("CREATE INDEX metrics_key ON metrics (host, ts)")
    rows = [(key, T0 + dt.timedelta(hours=i), float(v)) for k, key in enumerate(KEYS)
            for i, v in enumerate(series_values(k))]
    wh.executemany("INSERT INTO metrics (host, ts, cpu) VALUES (?, ?, ?)", rows)
    back = {"target_table": None, "write_back": "columns"}
    scan(wh, **back).execute(ctx(0, 8, "good"))
    before = wh.checksum("metrics")
    assert wh.run(f"SELECT count(*) FROM metrics WHERE {q('run_id')} = 'good'")[0][0] == len(rows)
    with pytest.raises(AirflowFailException, match="(?i)check constraint"):
        scan(wh, **back, chunk_rows=HOURS, sensitivity=80).execute(ctx(0, 8, "bad"))
    assert wh.checksum("metrics") == before
    if wh.kind == "postgres":
        wh.run("""CREATE FUNCTION ad_drop() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.host = 'h2' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$""")
        wh.run("CREATE TRIGGER ad_drop BEFORE UPDATE ON metrics FOR EACH ROW EXECUTE FUNCTION ad_drop()")
        with pytest.raises(Exception) as err:
            scan(wh, **back, chunk_rows=HOURS, sensitivity=80).execute(ctx(0, 8, "dropped"))
        assert not isinstance(err.value, AirflowFailException)
        assert wh.checksum("metrics") == before


def test_failed_write_back_leaves_the_source_table_unchanged(wh: Warehouse) -> None:
    _failed_write_backs_roll_back(wh, key_index=False)


def test_failed_write_back_through_a_key_index_leaves_the_table_unchanged(postgres_wh: Warehouse) -> None:
    _failed_write_backs_roll_back(postgres_wh, key_index=True)


# --------------------------------------------------------------------------- identifiers and bad arguments


def test_hostile_identifiers_work_and_touch_nothing_else(wh: Warehouse) -> None:
    table = 'metrics "daily"; drop table x'
    make_metrics(wh, table=table, value_col="Value Col")
    wh.run("CREATE TABLE x (a INTEGER)")
    wh.run("INSERT INTO x VALUES (1)")
    s = scan(wh, table=table, value="Value Col", target_table='out "x"; drop table x').execute(ctx(0, 8))
    assert s["points"] == len(KEYS) * HOURS
    scan(wh, table=table, value="Value Col", target_table=None, write_back="columns").execute(ctx(0, 8))
    assert wh.run(f"SELECT count(is_anomaly) FROM {wh.quote(table)}")[0][0] == len(KEYS) * HOURS
    assert wh.run("SELECT count(*) FROM x")[0][0] == 1
    with pytest.raises(AirflowFailException, match="could not be read"):
        scan(wh, table="x; drop table x").execute(ctx(0, 8))
    with pytest.raises(AirflowFailException, match="could not be read"):
        scan(wh, table=table, value="Value Col; drop table x").execute(ctx(0, 8))
    assert wh.run("SELECT count(*) FROM x")[0][0] == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sensitivity": 120}, "InvalidModelArgument"),
        ({"granularity": "fortnightly"}, "InvalidGranularity"),
        ({"value": "nope"}, "BadArgument: The source table 'metrics'"),
        ({"timestamp": "cpu"}, "must be a timestamp"),
        ({"partitions": 2, "partition": 2}, "partition"),
    ],
)
def test_bad_arguments_fail_without_retry(duckdb_wh: Warehouse, kwargs: dict[str, Any], match: str) -> None:
    make_metrics(duckdb_wh)
    with pytest.raises(AirflowFailException, match=match):
        scan(duckdb_wh, **kwargs).execute(ctx(0, 8))
    assert not duckdb_wh.table_exists("metrics_anomalies")


def test_constructor_refuses_inconsistent_arguments() -> None:
    with pytest.raises(ValueError, match="Exactly one of the 'table' and 'sql'"):
        AnomalyDetectionOperator(task_id="a", key="k", timestamp="t", value="v", target_table="o")
    with pytest.raises(ValueError, match="write_back='columns' fills the source table"):
        AnomalyDetectionOperator(task_id="a", sql="select 1", key="k", timestamp="t", value="v", write_back="columns")
    with pytest.raises(ValueError, match="on_anomaly"):
        LastPointAnomalyOperator(task_id="a", table="m", key="k", timestamp="t", value="v", target_table="o",
                                 on_anomaly="panic")


def test_templated_engine_parameters_are_numbers_again(duckdb_wh: Warehouse) -> None:
    """Jinja renders ``"{{ params.sensitivity }}"`` as text; the scan uses the number it names."""
    make_metrics(duckdb_wh)
    op = scan(duckdb_wh, sensitivity="{{ params.sensitivity }}", max_anomaly_ratio="{{ params.ratio }}")
    op.render_template_fields({"params": {"sensitivity": 60, "ratio": 0.01}})
    assert op.detect_params["sensitivity"] == "60"
    templated = op.execute(ctx(0, 8))
    plain = scan(duckdb_wh, target_table="plain", sensitivity=60, max_anomaly_ratio=0.01).execute(ctx(0, 8))
    lenient = scan(duckdb_wh, target_table="lenient").execute(ctx(0, 8))
    assert templated["anomalies"] == plain["anomalies"] != lenient["anomalies"]
    bad = scan(duckdb_wh, sensitivity="{{ params.sensitivity }}")
    bad.render_template_fields({"params": {"sensitivity": "high"}})
    with pytest.raises(AirflowFailException, match="'sensitivity' field must be a number .* got 'high'"):
        bad.execute(ctx(0, 8))


def test_empty_data_interval_needs_interval(duckdb_wh: Warehouse) -> None:
    make_metrics(duckdb_wh)
    point = ctx(4, 4)
    with pytest.raises(AirflowFailException, match="interval"):
        scan(duckdb_wh).execute(point)
    s = scan(duckdb_wh, interval=dt.timedelta(days=1)).execute(point)
    assert s["points"] == len(KEYS) * 24


# --------------------------------------------------------------------------- sources, values, other operators


def test_sql_source_and_several_value_columns(wh: Warehouse) -> None:
    make_metrics(wh)
    sql = "SELECT host, ts, cpu, cpu * 2 AS cpu2 FROM metrics WHERE host <> 'h4'"
    s = scan(wh, table=None, sql=sql, value=["cpu", "cpu2"]).execute(ctx(0, 8))
    assert s["series"] == 8 and s["points"] == 8 * HOURS
    assert dict(wh.run("SELECT metric, count(*) FROM metrics_anomalies GROUP BY metric")) == {
        "cpu": 4 * HOURS, "cpu2": 4 * HOURS}


def test_last_point_monitor(wh: Warehouse) -> None:
    make_metrics(wh)
    newest = T0 + dt.timedelta(hours=HOURS - 1)
    wh.run("UPDATE metrics SET cpu = 500 WHERE host = 'h2' AND ts = " + ("?" if wh.kind == "duckdb" else "%s"),
           [newest])
    common = dict(task_id="last", conn_id=wh.conn_id, table="metrics", key="host", timestamp="ts", value="cpu",
                  lookback=dt.timedelta(days=7), target_table="last_points", sensitivity=95)
    s = LastPointAnomalyOperator(**common).execute(ctx(7, 8))
    assert s["anomalous_keys"] == ["h2"] and s["points"] == len(KEYS)
    assert wh.run("SELECT count(*), count(DISTINCT host) FROM last_points")[0] == (len(KEYS), len(KEYS))
    with pytest.raises(AirflowFailException, match="h2"):
        LastPointAnomalyOperator(on_anomaly="fail", **common).execute(ctx(7, 8))
    with pytest.raises(AirflowSkipException):
        LastPointAnomalyOperator(on_anomaly="skip", **common).execute(ctx(7, 8))
    assert wh.run("SELECT count(*) FROM last_points")[0][0] == len(KEYS)  # written before failing, once
    assert wh.run("SELECT is_anomaly FROM last_points WHERE host = 'h2'")[0][0] is True


def test_change_point_operator_writes_its_columns(wh: Warehouse) -> None:
    make_metrics(wh)
    op = ChangePointOperator(task_id="cp", conn_id=wh.conn_id, table="metrics", key="host", timestamp="ts",
                             value="cpu", target_table="changes")
    s = op.execute(ctx(0, 8))
    assert s["points"] == len(KEYS) * HOURS and "change_points" in s
    cols = {r[0] for r in wh.run("SELECT column_name FROM information_schema.columns WHERE table_name = 'changes'")}
    assert {"is_change_point", "change_point_confidence", "run_id", "detected_at"} <= cols
    assert wh.run("SELECT count(*) FROM changes WHERE is_change_point IS NULL")[0][0] == 0


def test_long_scans_log_their_progress(duckdb_wh: Warehouse) -> None:
    from ad_pipeline.warehouse.backends import backend_for
    from ad_pipeline.warehouse.scan import run_scan

    make_metrics(duckdb_wh)
    op = scan(duckdb_wh, chunk_rows=HOURS)  # one series per chunk: 5 chunks
    spec = op._spec(ctx(0, 8))
    messages: list[str] = []
    spec.log = messages.append
    backend = backend_for(op.hook)
    try:
        run_scan(spec, backend)
    finally:
        backend.close()
    progress = [m for m in messages if m.startswith("chunk ")]
    assert [m.split(":")[0] for m in progress] == [f"chunk {i}/5" for i in range(1, 6)]
    assert progress[-1].startswith(f"chunk 5/5: {len(KEYS) * HOURS} points detected")


def test_generic_dbapi_backend_gives_the_same_rows(duckdb_wh: Warehouse) -> None:
    """The plain DB-API path (fetchall / executemany), used for hooks without a bulk path."""
    from ad_pipeline.warehouse.backends import Backend
    from ad_pipeline.warehouse.scan import run_scan

    wh = duckdb_wh
    make_metrics(wh)
    op = scan(wh, target_table="bulk")
    op.execute(ctx(2, 4))
    generic = scan(wh, target_table="generic")
    spec = generic._spec(ctx(2, 4))
    backend = Backend(generic.hook)
    try:
        summary = run_scan(spec, backend)
    finally:
        backend.close()
    assert summary["points"] == len(KEYS) * 48
    cols = "host, ts, value, is_anomaly, expected_value, upper_boundary, period"
    assert wh.run(f"SELECT {cols} FROM generic ORDER BY host, ts") == wh.run(f"SELECT {cols} FROM bulk ORDER BY host, ts")
