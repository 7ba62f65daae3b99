"""Hourly real-time monitor on PostgreSQL: is the newest point of each service anomalous?

``LastPointAnomalyOperator`` judges each service's newest latency point from its suggested window
of history and writes one row per service to ``latency_last_point``; the anomalous services go to
XCom (``anomalous_keys``), where the next task (an alert, a ticket ...) picks them up. Set
``on_anomaly="fail"`` to fail the task instead, or ``"skip"`` to skip what follows.

Connection: ``AIRFLOW_CONN_AD_POSTGRES='postgres://user:password@host:5432/dbname'``. The first task
fills ``service_latency`` with demo data; drop it to monitor your own table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ad_pipeline_demo import fill_postgres
from airflow.sdk import DAG, task

from ad_pipeline.airflow import LastPointAnomalyOperator

with DAG(
    dag_id="ad_pipeline_hourly_last_point_postgres",
    schedule="@hourly",
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["ad_pipeline", "example"],
) as dag:

    @task
    def demo_data(data_interval_end: Any = None) -> int:
        return fill_postgres("ad_postgres", data_interval_end)

    monitor = LastPointAnomalyOperator(
        task_id="monitor",
        conn_id="ad_postgres",
        table="service_latency",
        key="service",
        timestamp="ts",
        value="latency_ms",
        lookback=dt.timedelta(days=2),  # history read; each key is judged from its suggested window
        interval=dt.timedelta(hours=1),  # only keys with a point in the last hour are judged
        target_table="latency_last_point",
        on_anomaly="continue",
    )

    @task
    def alert(summary: dict[str, Any]) -> list[Any]:
        keys = summary["anomalous_keys"]
        print(f"anomalous services: {keys or 'none'}")
        return keys

    demo_data() >> monitor
    alert(monitor.output)
