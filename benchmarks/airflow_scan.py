"""End-to-end Airflow operator scan of 1,000,000 rows (1,000 series x 1,000 points) in PostgreSQL.

Starts a throwaway PostgreSQL server (tests/support/pgserver.py; needs ``apt-get install postgresql``),
fills ``metrics`` server-side, then runs ``AnomalyDetectionOperator.execute()`` -- read (ADBC/Arrow)
+ detect (one engine batch call per chunk) + write -- per write mode: a first run, then ``--reruns``
of the same interval. Prints rows/s of each run and the median per mode (target: >= 100,000 rows/s),
the engine's share, and the peak RSS of this process.

    .venv/bin/python -m benchmarks.airflow_scan [--series 1000] [--points 1000] [--chunk-rows 200000] [--reruns 2]
                                                [--no-key-index]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import tempfile
import time

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="ad_bench_airflow_"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def server_cpu_seconds(server: object) -> float:
    """CPU used by the server so far: the postmaster plus its reaped backends (children's times)."""
    import psutil

    pid = int((server.root / "data" / "postmaster.pid").read_text().split()[0])  # type: ignore[attr-defined]
    proc = psutil.Process(pid)
    t = proc.cpu_times()
    live = 0.0
    for child in proc.children():
        try:
            live += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return t.user + t.system + t.children_user + t.children_system + live


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--chunk-rows", type=int, default=200_000)
    ap.add_argument("--reruns", type=int, default=2, help="runs after the first one, per write mode (same interval)")
    ap.add_argument("--no-key-index", action="store_true",
                    help="metrics without its primary key (series, ts): write-back then runs one UPDATE at commit")
    args = ap.parse_args()

    import numpy as np
    import psycopg

    import ad_pipeline as ad
    from ad_pipeline.airflow import AnomalyDetectionOperator
    from tests.support import pgserver

    n_rows = args.series * args.points
    server = pgserver.start_postgres()
    try:
        os.environ["AIRFLOW_CONN_BENCH_PG"] = server.airflow_uri
        t0 = time.perf_counter()
        with psycopg.connect(server.conninfo, autocommit=True) as con:
            key = "" if args.no_key_index else ", PRIMARY KEY (series, ts)"
            con.execute(f"CREATE TABLE metrics (series TEXT, ts TIMESTAMP, value DOUBLE PRECISION{key})")
            con.execute(
                """INSERT INTO metrics
                   SELECT 's' || lpad(s::text, 5, '0'), TIMESTAMP '2024-01-01' + p * interval '1 hour',
                          100 + 10 * sin(2 * pi() * p / 24) + 3 * sin(s) + random()
                          + CASE WHEN random() < 0.002 THEN 50 ELSE 0 END
                   FROM generate_series(1, %s) s, generate_series(0, %s - 1) p""",
                [args.series, args.points],
            )
            con.execute("ANALYZE metrics")
        print(f"filled {n_rows:,} rows ({args.series} series x {args.points}) in {time.perf_counter() - t0:.1f} s")

        start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        context = {
            "data_interval_start": start,
            "data_interval_end": start + dt.timedelta(hours=args.points),
            "run_id": "bench",
        }
        common = dict(conn_id="bench_pg", table="metrics", key="series", timestamp="ts", value="value",
                      chunk_rows=args.chunk_rows)
        medians = {}
        for mode, kw in (("target_table", {"target_table": "metrics_anomalies"}),
                         ("write_back='columns'", {"write_back": "columns"})):
            rates = []
            for attempt in ["first run"] + [f"re-run {i + 1}" for i in range(args.reruns)]:
                op = AnomalyDetectionOperator(task_id="bench", **common, **kw)
                t0, c0, s0 = time.perf_counter(), time.process_time(), server_cpu_seconds(server)
                summary = op.execute(context)
                secs, cpu = time.perf_counter() - t0, time.process_time() - c0
                srv = server_cpu_seconds(server) - s0
                assert summary["points"] == n_rows, summary
                rates.append(n_rows / secs)
                print(f"{mode:22s} {attempt:10s}: {n_rows:,} rows in {secs:6.2f} s = {n_rows / secs:10,.0f} rows/s "
                      f"({summary['anomalies']} anomalies, {summary['chunks']} chunks; seconds {summary['seconds']}, "
                      f"CPU: client {cpu:.1f} s + server {srv:.1f} s = {n_rows / (cpu + srv):,.0f} rows per CPU-second)")
            medians[mode] = (rates[0], statistics.median(rates))
        for mode, (first, median) in medians.items():
            print(f"{mode:22s}: first run {first:10,.0f} rows/s, median of all {len(rates)} runs "
                  f"{median:10,.0f} rows/s (target >= 100,000)")

        print(f"peak RSS of this process after both modes: {peak_rss_mb():,.0f} MB")

        # the engine alone on data of the same shape, for the share of the time spent detecting
        rng = np.random.default_rng(0)
        p = np.arange(args.points)
        values = (100 + 10 * np.sin(2 * np.pi * p / 24) + rng.random((args.series, args.points))).ravel()
        ts = np.tile(np.datetime64("2024-01-01", "ns") + p * np.timedelta64(1, "h"), args.series)
        offsets = np.arange(args.series + 1) * args.points
        t0 = time.perf_counter()
        ad.detect_entire_batch(values, offsets, ts, errors="coerce")
        secs = time.perf_counter() - t0
        print(f"{'engine batch call alone':32s}: {n_rows / secs:10,.0f} rows/s ({secs:.2f} s)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
