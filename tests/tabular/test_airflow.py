"""TabularAnomalyOperator against a real DuckDB file: fit/score/write, re-runs, saved models, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.support import airflow_env  # noqa: F401  (the Airflow environment, before Airflow's first import)

pytest.importorskip("airflow.sdk")
duckdb = pytest.importorskip("duckdb")

from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

from ad_pipeline.airflow.tabular import TabularAnomalyOperator  # noqa: E402
from ad_pipeline.engine.tabular import TabularDetector  # noqa: E402


@pytest.fixture
def warehouse(tmp_path: Path, mixed: dict[str, np.ndarray]) -> Path:
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE rows (id BIGINT, a DOUBLE, b DOUBLE, color VARCHAR, label INTEGER)")
    con.executemany(
        "INSERT INTO rows VALUES (?, ?, ?, ?, ?)",
        [(i, None if np.isnan(mixed["a"][i]) else float(mixed["a"][i]), float(mixed["b"][i]), mixed["color"][i], 0)
         for i in range(300)],
    )
    con.close()
    return path


def _op(path: Path, **kw: object) -> TabularAnomalyOperator:
    base: dict[str, object] = {"task_id": "score", "key": "id", "table": "rows", "ignore": ["label"],
                               "hook_params": {"database": str(path)}}
    return TabularAnomalyOperator(**{**base, **kw})


def _fetch(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_target_table_equals_engine_and_reruns_replace(warehouse: Path, mixed: dict[str, np.ndarray]) -> None:
    op = _op(warehouse, target_table="scores", features=["a", "b", "color"], model_params={"contamination": 0.05})
    first = op.execute({"run_id": "r1"})
    second = op.execute({"run_id": "r2"})
    assert first["rows"] == second["rows"] == first["rows_written"] == 300
    rows = _fetch(warehouse, "SELECT id, anomaly, is_anomaly, anomaly_top_features, run_id FROM scores ORDER BY id")
    assert len(rows) == 300 and {r[4] for r in rows} == {"r2"}  # one row per key after the re-run
    model = TabularDetector(contamination=0.05).fit(mixed)
    want = model.decision_function(mixed)
    np.testing.assert_array_equal([r[1] for r in rows], want)
    assert [r[2] for r in rows] == (want < 0).tolist()
    assert json.loads(rows[0][3]) == model.explain({k: v[:1] for k, v in mixed.items()}).to_list()[0]
    assert first["percent_anomalies"] == pytest.approx(0.05, abs=0.02)


def test_saved_model_scores_other_rows_in_place(warehouse: Path, tmp_path: Path) -> None:
    model_path = tmp_path / "model.npz"
    _op(warehouse, target_table="scores", features=["a", "b", "color"], save_model_path=str(model_path)).execute({})
    assert model_path.exists()
    summary = _op(warehouse, write_back="columns", model_path=str(model_path), top=0).execute({"run_id": "wb"})
    assert summary["model"]["loaded_from"] == str(model_path)
    in_place = _fetch(warehouse, "SELECT anomaly, anomaly_top_features FROM rows ORDER BY id")
    fitted = _fetch(warehouse, "SELECT anomaly FROM scores ORDER BY id")
    assert [r[0] for r in in_place] == [r[0] for r in fitted]
    assert all(r[1] is None for r in in_place)


def test_default_features_are_numeric_columns(warehouse: Path) -> None:
    summary = _op(warehouse, target_table="scores").execute({})
    assert summary["features"] == ["a", "b"]  # not the key, not the ignored label, not the string column


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"target_table": "scores", "features": ["a", "nope"]}, "could not be read"),
        ({"target_table": "scores", "model_params": {"contamination": 0.9}}, "InvalidModelArgument"),
        ({"target_table": "scores", "model_path": "/no/such/dir"}, None),
    ],
)
def test_bad_arguments_fail_without_retry(warehouse: Path, kw: dict, message: str | None, tmp_path: Path) -> None:
    if kw.get("model_path"):
        foreign = tmp_path / "foreign.npz"
        foreign.write_bytes(b"PK\x03\x04 not really a model")
        kw = {**kw, "model_path": str(foreign)}
        message = "InvalidModelFile"
    with pytest.raises(AirflowFailException, match=message):
        _op(warehouse, **kw).execute({})


def test_constructor_refusals() -> None:
    from ad_pipeline.errors import BadArgument

    with pytest.raises(BadArgument, match="Exactly one of 'table' and 'sql'"):
        TabularAnomalyOperator(task_id="t", key="id", target_table="s")
    with pytest.raises(BadArgument, match="Exactly one of 'target_table'"):
        TabularAnomalyOperator(task_id="t", key="id", table="rows")
    with pytest.raises(BadArgument, match="model_path"):
        TabularAnomalyOperator(task_id="t", key="id", table="rows", target_table="s", model_path="m",
                               fit_table="other")


@pytest.fixture(scope="module")
def pg_conn_id(pg_server, mixed: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    """A database of the session's PostgreSQL server (tests/support/sessions.py) holding the ``rows`` table."""
    import uuid

    psycopg = pytest.importorskip("psycopg")
    db = f"tabular_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.conninfo, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{db}"')
    dsn = f"postgresql://{pg_server.user}@{pg_server.host}:{pg_server.port}/{db}"
    with psycopg.connect(dsn, autocommit=True) as con:
        con.execute('CREATE TABLE "rows" (id BIGINT, a DOUBLE PRECISION, b DOUBLE PRECISION, color TEXT, '
                    "label INTEGER)")
        with con.cursor() as cur:
            cur.executemany(
                'INSERT INTO "rows" VALUES (%s, %s, %s, %s, %s)',
                [(i, None if np.isnan(mixed["a"][i]) else float(mixed["a"][i]), float(mixed["b"][i]),
                  mixed["color"][i], 0) for i in range(300)],
            )
    conn_id = f"pg_{uuid.uuid4().hex[:8]}"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = f"postgres://{pg_server.user}@{pg_server.host}:{pg_server.port}/{db}"
    try:
        yield conn_id, dsn
    finally:
        del os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]


def test_postgres_target_and_write_back(pg_conn_id, mixed: dict[str, np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    conn_id, dsn = pg_conn_id
    base = {"task_id": "pg", "conn_id": conn_id, "key": "id", "features": ["a", "b", "color"],
            "model_params": {"contamination": 0.05}}
    TabularAnomalyOperator(**base, sql="SELECT * FROM rows WHERE color IS NULL OR color LIKE '%' ORDER BY id",
                           target_table="scores").execute({"run_id": "p1"})
    TabularAnomalyOperator(**base, table="rows", write_back="columns").execute({"run_id": "p2"})
    want = TabularDetector(contamination=0.05).fit(mixed).decision_function(mixed)
    with psycopg.connect(dsn) as con:
        target = con.execute("SELECT anomaly FROM scores ORDER BY id").fetchall()
        in_place = con.execute('SELECT anomaly, is_anomaly, run_id FROM "rows" ORDER BY id').fetchall()
    np.testing.assert_allclose([r[0] for r in target], want, rtol=0, atol=1e-15)
    np.testing.assert_allclose([r[0] for r in in_place], want, rtol=0, atol=1e-15)
    assert [r[1] for r in in_place] == (want < 0).tolist() and {r[2] for r in in_place} == {"p2"}
