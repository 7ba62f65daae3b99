"""Demo data for the example DAGs: deterministic seasonal metrics with a few spikes, inserted idempotently.

Each function fills the window before ``end`` (rows already present are kept), so a DAG run on a
fresh machine -- or a backfill -- always finds data to scan. Values are computed in SQL from the
key and the timestamp; the window bounds are bound parameters.
"""

from __future__ import annotations

import datetime as dt


def fill_duckdb(path: str, end: dt.datetime, *, days: int = 14, hosts: int = 20) -> int:
    """Hourly ``metrics(host, ts, cpu)`` in the DuckDB file ``path`` for ``days`` before ``end``."""
    import duckdb

    end = end.astimezone(dt.UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    con = duckdb.connect(path)
    try:
        con.execute(
            "CREATE TABLE IF NOT EXISTS metrics (host VARCHAR, ts TIMESTAMP, cpu DOUBLE, PRIMARY KEY (host, ts))"
        )
        con.execute(
            """
            INSERT OR IGNORE INTO metrics
            SELECT 'host-' || lpad(CAST(h AS VARCHAR), 2, '0'), ts,
                   50 + 10 * sin(2 * pi() * hour(ts) / 24) + 5 * sin(h)
                   + (hash(h, ts) % 1000) / 500.0
                   + CASE WHEN hash(h, ts) % 211 = 0 THEN 40 ELSE 0 END
            FROM range(?) r(h),
                 generate_series(CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP), INTERVAL 1 HOUR) g(ts)
            """,
            [hosts, end - dt.timedelta(days=days), end - dt.timedelta(hours=1)],
        )
        return int(con.execute("SELECT count(*) FROM metrics").fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def fill_postgres(conn_id: str, end: dt.datetime, *, days: int = 3, services: int = 12) -> int:
    """5-minute ``service_latency(service, ts, latency_ms)`` for ``days`` before ``end`` (PostgreSQL)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=conn_id)
    end = end.astimezone(dt.UTC).replace(second=0, microsecond=0)
    end = end.replace(minute=end.minute - end.minute % 5)
    with hook.get_conn() as con, con.cursor() as cur:
        cur.execute(
            """CREATE TABLE IF NOT EXISTS service_latency (
                   service TEXT, ts TIMESTAMPTZ, latency_ms DOUBLE PRECISION, PRIMARY KEY (service, ts))"""
        )
        cur.execute(
            """
            INSERT INTO service_latency
            SELECT 'svc-' || s, ts,
                   120 + 30 * sin(2 * pi() * extract(hour FROM ts AT TIME ZONE 'UTC') / 24) + 10 * sin(s)
                   + (abs(hashtext(s || ts::text)) %% 1000) / 100.0
                   + CASE WHEN s = 3 AND ts = %(last)s THEN 400 ELSE 0 END
            FROM generate_series(0, %(n)s - 1) s,
                 generate_series(%(first)s::timestamptz, %(last)s::timestamptz, interval '5 minutes') ts
            ON CONFLICT DO NOTHING
            """,
            {"n": services, "first": end - dt.timedelta(days=days), "last": end - dt.timedelta(minutes=5)},
        )
        cur.execute("SELECT count(*) FROM service_latency")
        n = int(cur.fetchone()[0])
        con.commit()
    return n
