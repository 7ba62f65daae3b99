"""DuckDB adapter overhead and the memory of a warehouse scan.

1. SQL overhead: a table of ``--series`` x ``--points`` rows (hourly, seasonal, noise) in a DuckDB
   file. Prints the time of ``CREATE TABLE ... AS SELECT * FROM anomaly_detect('metrics')``
   divided by (the engine's batch call on the same data + the same query without detection:
   ``list()`` aggregation and ``unnest``). Target: at most 1.3.
2. ``ad-pipeline scan`` of ``--scan-series`` x ``--scan-points`` rows (default 50,000 x 1,000 =
   50M rows) into a results table, run as a child process: wall time, rate and peak RSS of that
   child (``os.wait4``: the ``getrusage(RUSAGE_CHILDREN)`` figure of that one child). Target: peak
   RSS under 4 GB. It runs first and the warehouse is built by another child, so this process is
   small when the scan is spawned (a child's peak RSS includes its parent's resident memory at
   spawn time).

Rows are stored in time order (series interleaved), the worst case for the key-range reads.

    python -m benchmarks.duckdb_scan                                  # full size
    python -m benchmarks.duckdb_scan --series 1000 --points 500 --scan-series 2000 --scan-points 1000
    python -m benchmarks.duckdb_scan --skip-scan                      # part 1 only
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

import ad_pipeline as ad
import ad_pipeline.duckdb as add

TARGET_RATIO = 1.3
TARGET_RSS_GB = 4.0


def make_table(con: duckdb.DuckDBPyConnection, n_series: int, n_points: int, seed: int = 0) -> None:
    """``metrics(key, ts, value)``: hourly daily-seasonal series with noise and a few spikes, in time order."""
    con.execute("SELECT setseed(?)", [1 / (seed + 2)]).fetchall()
    con.execute(
        """
        CREATE OR REPLACE TABLE metrics AS
        SELECT 's' || lpad(s::VARCHAR, 6, '0') AS key,
               TIMESTAMP '2024-01-01' + to_hours(t) AS ts,
               (50 + s % 50) * (1 + 0.2 * sin(2 * pi() * (t + s) / 24)) + 2 * (random() - 0.5)
                 + CASE WHEN random() < 0.002 THEN 40 ELSE 0 END AS value
        FROM range(?) a(t), range(?) b(s)
        ORDER BY t, s
        """,
        [n_points, n_series],
    ).fetchall()


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def sql_overhead(folder: Path, n_series: int, n_points: int) -> float:
    path = str(folder / "overhead.duckdb")
    con = add.connect(path)
    make_table(con, n_series, n_points)
    n = n_series * n_points
    print(f"table: {n_series:,} series x {n_points:,} points = {n:,} rows ({path})")

    tbl = con.sql("SELECT key, ts, value FROM metrics ORDER BY key, ts").to_arrow_table()
    values = tbl.column("value").to_numpy()
    ts = tbl.column("ts").to_numpy()
    offsets = np.arange(0, n + 1, n_points)
    del tbl

    # warm up (imports, numba JIT, every model path) on up to 100 series, so no timing below pays it
    k = min(n_series, 100)
    ad.detect_entire_batch(values[: k * n_points], offsets[: k + 1], ts[: k * n_points])
    con.execute("CREATE OR REPLACE TEMP TABLE warm AS SELECT * FROM metrics WHERE key <= ?", [f"s{k - 1:06d}"])
    con.execute("SELECT count(*) FROM anomaly_detect('warm')").fetchall()

    t_engine, _ = timed(lambda: ad.detect_entire_batch(values, offsets, ts))

    t_base, _ = timed(
        lambda: con.execute(
            """CREATE OR REPLACE TEMP TABLE base AS
               WITH s AS (SELECT key, list(ts ORDER BY ts) AS t, list(value ORDER BY ts) AS v FROM metrics GROUP BY key)
               SELECT key, unnest(t) AS ts, unnest(v) AS value FROM s"""
        ).fetchall()
    )
    t_macro, _ = timed(
        lambda: con.execute("CREATE OR REPLACE TEMP TABLE res AS SELECT * FROM anomaly_detect('metrics')").fetchall()
    )
    rows = con.execute("SELECT count(*), count(*) FILTER (WHERE is_anomaly) FROM res").fetchall()[0]
    con.close()
    assert rows[0] == n, rows
    ratio = t_macro / (t_engine + t_base)
    print(f"engine batch call        {t_engine:8.2f} s  ({n / t_engine:,.0f} points/s)")
    print(f"list()+unnest, no detect {t_base:8.2f} s  ({n / t_base:,.0f} points/s)")
    print(f"anomaly_detect macro     {t_macro:8.2f} s  ({n / t_macro:,.0f} points/s, {rows[1]:,} anomalies)")
    print(f"ratio macro / (engine + list/unnest) = {ratio:.2f}  (target <= {TARGET_RATIO}) "
          f"{'OK' if ratio <= TARGET_RATIO else 'OVER'}")  # fmt: skip
    return ratio


def cli_scan(folder: Path, n_series: int, n_points: int, chunk_rows: int) -> float:
    path = str(folder / "warehouse.duckdb")
    # the warehouse is built by a child process: this process stays small, because a child's peak
    # RSS includes the parent's resident memory at the moment it is spawned (exec keeps the larger)
    t0 = time.perf_counter()
    build = [sys.executable, __file__, "--build-only", path, "--scan-series", str(n_series),
             "--scan-points", str(n_points)]  # fmt: skip
    subprocess.run(build, check=True)
    t_make = time.perf_counter() - t0
    n = n_series * n_points
    print(f"\nwarehouse: {n_series:,} series x {n_points:,} points = {n:,} rows, built in {t_make:.1f} s ({path})")
    exe = shutil.which("ad-pipeline", path=str(Path(sys.executable).parent)) or "ad-pipeline"
    cmd = [exe, "scan", "--db", path, "--table", "metrics", "--key", "key", "--timestamp", "ts", "--value", "value",
           "--into", "metrics_anomalies", "--chunk-rows", str(chunk_rows)]  # fmt: skip
    print("$ " + " ".join(cmd))
    own_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    log = folder / "scan.log"
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, text=True, stdout=fh, stderr=subprocess.STDOUT)
        # rusage of this one child (wait4); ru_maxrss is its peak resident set, KiB on Linux. It is
        # what getrusage(RUSAGE_CHILDREN) reports when the scan is the only child.
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    peak_gb = usage.ru_maxrss / 1024**2
    print(log.read_text().strip())
    if status:
        raise SystemExit(f"ad-pipeline scan failed (wait status {status})")
    con = duckdb.connect(path, read_only=True)
    written = con.execute("SELECT count(*) FROM metrics_anomalies").fetchall()[0][0]
    con.close()
    assert written == n, (written, n)
    print(f"scan: {wall:.1f} s wall, {n / wall:,.0f} rows/s, {n_series / wall:,.1f} series/s")
    print(f"peak RSS of the ad-pipeline scan process: {peak_gb:.2f} GB  (target < {TARGET_RSS_GB} GB) "
          f"{'OK' if peak_gb < TARGET_RSS_GB else 'OVER'}; this benchmark process: {own_gb:.2f} GB")  # fmt: skip
    return peak_gb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=10_000, help="series of the SQL overhead table (default 10,000)")
    p.add_argument("--points", type=int, default=1_000, help="points per series (default 1,000)")
    p.add_argument("--scan-series", type=int, default=50_000, help="series of the CLI scan (default 50,000)")
    p.add_argument("--scan-points", type=int, default=1_000, help="points per series of the CLI scan")
    p.add_argument("--chunk-rows", type=int, default=1_000_000, help="ad-pipeline --chunk-rows (default 1,000,000)")
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--skip-scan", action="store_true")
    p.add_argument("--dir", help="work folder (default: a temporary one, removed at the end)")
    p.add_argument("--build-only", help=argparse.SUPPRESS)  # internal: build the scan warehouse there, exit
    args = p.parse_args(argv)
    if args.build_only:
        con = duckdb.connect(args.build_only)
        make_table(con, args.scan_series, args.scan_points, seed=1)
        con.close()
        return 0
    print(f"ad_pipeline {ad.__version__}, duckdb {duckdb.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        ok = True
        # the scan first, while this process is small (see cli_scan)
        if not args.skip_scan:
            ok &= cli_scan(folder, args.scan_series, args.scan_points, args.chunk_rows) < TARGET_RSS_GB
        if not args.skip_overhead:
            ok &= sql_overhead(folder, args.series, args.points) <= TARGET_RATIO
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
