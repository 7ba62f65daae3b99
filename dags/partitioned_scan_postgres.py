"""A scan split across workers: ``partitions=4`` hash partitions of the keys, one mapped task each.

Each mapped task reads and writes only its partition's series (in chunks of whole series), so the
scan of a large table runs in parallel on several workers and each holds one chunk in memory.
Results go back into the source table as columns (``write_back="columns"``).

Connection: ``AIRFLOW_CONN_AD_POSTGRES`` (see hourly_last_point_postgres.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ad_pipeline_demo import fill_postgres
from airflow.sdk import DAG, task

from ad_pipeline.airflow import AnomalyDetectionOperator

PARTITIONS = 4

with DAG(
    dag_id="ad_pipeline_partitioned_scan_postgres",
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    tags=["ad_pipeline", "example"],
) as dag:

    @task
    def demo_data(data_interval_end: Any = None) -> int:
        return fill_postgres("ad_postgres", data_interval_end)

    scan = AnomalyDetectionOperator.partial(
        task_id="scan",
        conn_id="ad_postgres",
        table="service_latency",
        key="service",
        timestamp="ts",
        value="latency_ms",
        interval=dt.timedelta(days=1),
        lookback=dt.timedelta(days=1),
        write_back="columns",
        partitions=PARTITIONS,
        chunk_rows=100_000,
    ).expand(partition=list(range(PARTITIONS)))

    @task
    def total(summaries: list[dict[str, Any]]) -> int:
        n = sum(s["anomalies"] for s in summaries)
        print(f"{n} anomalies in {sum(s['series'] for s in summaries)} series over {len(summaries)} partitions")
        return n

    demo_data() >> scan
    total(scan.output)
