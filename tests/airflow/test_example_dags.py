"""Each example DAG in dags/ runs once with ``airflow dags test`` and every task ends in success.

The command runs as a user would run it (a subprocess of the locked Airflow, the session's fresh
``AIRFLOW_HOME``, ``AIRFLOW__CORE__DAGS_FOLDER`` = ``dags/``); the verdict is read from Airflow's
metadata database (the run's state and each task instance's state), not from the exit code alone.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ..support.airflow_env import AIRFLOW_ENV

DAGS = Path(__file__).resolve().parents[2] / "dags"
LOGICAL_DATE = "2024-03-01T06:00:00+00:00"

# every file of dags/ that defines a DAG (ad_pipeline_demo.py is their data helper): (file, dag_id)
EXAMPLES = sorted(
    (p.stem, m.group(1))
    for p in DAGS.glob("*.py")
    if (m := re.search(r'dag_id="([^"]+)"', p.read_text()))
)


def test_the_documented_examples_are_all_found() -> None:
    assert {"daily_scan_duckdb", "hourly_last_point_postgres", "partitioned_scan_postgres"} <= {
        name for name, _ in EXAMPLES
    }


def test_every_file_of_dags_is_run_or_is_the_data_helper() -> None:
    """A DAG file whose ``dag_id`` the pattern above misses would silently go untested."""
    helpers = {"ad_pipeline_demo"}  # builds the demo warehouse the DAGs read; defines no DAG
    assert {p.stem for p in DAGS.glob("*.py")} == {name for name, _ in EXAMPLES} | helpers
    assert not any("dag_id" in (DAGS / f"{h}.py").read_text() for h in helpers)


def run_states(dag_id: str) -> tuple[list[str], dict[str, str]]:
    """States of every run of ``dag_id`` and of the task instances of its last run, from the DB."""
    db = AIRFLOW_ENV["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    con = sqlite3.connect(db)
    try:
        runs = con.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id", (dag_id,)).fetchall()
        tasks = con.execute(
            "SELECT task_id || CASE WHEN map_index >= 0 THEN '[' || map_index || ']' ELSE '' END, state "
            "FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (dag_id, runs[-1][0] if runs else ""),
        ).fetchall()
    finally:
        con.close()
    return [state for _, state in runs], dict(tasks)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "dag_id"), EXAMPLES)
def test_example_dag_succeeds(name: str, dag_id: str, airflow_db: dict[str, float], pg_server: Any) -> None:
    env = {**os.environ, **AIRFLOW_ENV, "AIRFLOW_CONN_AD_POSTGRES": pg_server.airflow_uri}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id, LOGICAL_DATE],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    print(f"\n[{name}: airflow dags test {time.perf_counter() - t0:.1f} s, exit {proc.returncode}]")
    runs, tasks = run_states(dag_id)
    log = (proc.stdout + proc.stderr)[-4000:]
    assert runs and runs[-1] == "success", f"run states {runs}, tasks {tasks}\n{log}"
    assert tasks and set(tasks.values()) == {"success"}, f"task states {tasks}\n{log}"
    assert proc.returncode == 0, log
