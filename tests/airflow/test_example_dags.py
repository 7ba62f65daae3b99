"""Each example DAG in dags/ runs once with ``dag.test()`` and ends in state success."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
LOGICAL_DATE = dt.datetime(2024, 3, 1, 6, tzinfo=dt.UTC)


def load_dag(name: str) -> Any:
    sys.path.insert(0, str(DAGS))
    spec = importlib.util.spec_from_file_location(f"example_{name}", DAGS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


# every file of dags/ that defines a DAG (ad_pipeline_demo.py is their data helper)
EXAMPLES = sorted(p.stem for p in DAGS.glob("*.py") if ") as dag:" in p.read_text())


def test_the_documented_examples_are_all_found() -> None:
    assert {"daily_scan_duckdb", "hourly_last_point_postgres"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_dag_succeeds(name: str, dag_test_ready: dict[str, float], pg_server: Any,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AD_POSTGRES", pg_server.airflow_uri)
    dag = load_dag(name)
    t0 = time.perf_counter()
    run = dag.test(logical_date=LOGICAL_DATE)
    print(f"\n[{name}: dag.test() {time.perf_counter() - t0:.1f} s]")
    assert str(run.state) in ("success", "DagRunState.SUCCESS")
