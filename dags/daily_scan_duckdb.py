"""Daily anomaly scan of a DuckDB warehouse: the embedded default, nothing to set up but ``pip install``.

Every day the scan reads the last day of ``metrics`` (plus a week of history for the model),
detects anomalies in every host's series with ONE engine call per chunk, and replaces that day's
rows in ``metrics_anomalies`` in one transaction -- so re-runs and backfills are safe.

The warehouse is the DuckDB file ``$AD_PIPELINE_DEMO_DUCKDB`` (default: ad_pipeline_demo.duckdb in
the temp directory); the first task fills it with demo data. To scan your own warehouse, drop the
first task and point ``conn_id`` at a DuckDB connection, e.g.
``AIRFLOW_CONN_WAREHOUSE='duckdb://%2Fdata%2Fwarehouse.duckdb'``.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from typing import Any

from ad_pipeline_demo import fill_duckdb
from airflow.sdk import DAG, task

from ad_pipeline.airflow import AnomalyDetectionOperator

DEMO_DB = os.environ.get("AD_PIPELINE_DEMO_DUCKDB", os.path.join(tempfile.gettempdir(), "ad_pipeline_demo.duckdb"))

with DAG(
    dag_id="ad_pipeline_daily_scan_duckdb",
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["ad_pipeline", "example"],
) as dag:

    @task
    def demo_data(data_interval_end: Any = None) -> int:
        return fill_duckdb(DEMO_DB, data_interval_end)

    scan = AnomalyDetectionOperator(
        task_id="scan",
        conn_id="duckdb_default",  # no connection needed: hook_params name the file
        hook_params={"database": DEMO_DB},
        table="metrics",
        key="host",
        timestamp="ts",
        value="cpu",
        interval=dt.timedelta(days=1),  # '@daily' runs have point data intervals in Airflow 3
        lookback=dt.timedelta(days=7),
        target_table="metrics_anomalies",
        sensitivity=95,
    )

    @task
    def report(summary: dict[str, Any]) -> None:
        print(f"{summary['anomalies']} anomalies in {summary['points']} points of {summary['series']} series")
        for err in summary["errors"]:
            print(f"invalid series {err['key']}: {err['code']}: {err['message']}")

    demo_data() >> scan
    report(scan.output)
