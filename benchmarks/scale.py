"""Scale-out: Spark ``local[N]`` and a Dask ``LocalCluster`` against the local pandas accessor.

``--series`` hourly series x ``--points`` points (default 10,000 x 1,000), integer keys, the
Azure model with default parameters (period detected per series), written once to Parquet
in a temporary folder. Then, in this one run:

- pandas: ``df.anomaly.detect(by="series_id")`` on the frame in memory (one engine call);
- Spark ``local[2]`` and ``local[1]``: ``ad_pipeline.spark.detect`` over ``spark.read.parquet``
  (``mapInArrow``, ``maxRecordsPerBatch`` = ``--arrow-batch``), written to the ``noop`` sink;
- Dask ``LocalCluster`` with 2 and 1 worker processes (1 thread each):
  ``dd.read_parquet(...).anomaly.detect(by="series_id")``, every partition computed.

Each engine gets a small warm-up job first (Python workers import the package and load the
numba kernels once; a long-lived cluster pays that once), so the times are of the detection.
It prints the seconds, the pandas / engine ratio (> 1: faster than pandas on one core), the
1-worker / 2-worker ratio (2.0 = perfect scaling on 2 cores) and the peak memory per worker
(Spark: peak RSS of each Python worker process and of the JVM; Dask: peak RSS of each worker
process). On a machine shared with other jobs, read the ratios with the load average printed.

Run: python -m benchmarks.scale [--series 10000] [--points 1000] [--arrow-batch 100000] [--skip-spark] [--skip-dask]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore", category=FutureWarning)  # pyspark: "does not yet fully support pandas >= 3"


def make_frame(n_series: int, n_points: int, seed: int = 0) -> pd.DataFrame:
    """Hourly seasonal series (period 24) with noise and one spike each, key-major rows."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    values = np.tile(10 + 3 * np.sin(2 * np.pi * t / 24), n_series) + rng.normal(0, 0.5, n_series * n_points)
    values[np.arange(n_series) * n_points + rng.integers(0, n_points, n_series)] += 12
    ts = pd.date_range("2024-01-01", periods=n_points, freq="h").to_numpy()
    return pd.DataFrame(
        {"series_id": np.repeat(np.arange(n_series, dtype=np.int64), n_points), "timestamp": np.tile(ts, n_series),
         "value": values}
    )


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreePeak(threading.Thread):
    """Peak RSS (VmHWM) of every process under ``pid``, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peaks, self.names = pid, {}, {}
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.wait(0.2):
            try:
                root = psutil.Process(self.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for p in procs:
                kb = _status_kb(p.pid, "VmHWM")
                if kb:
                    self.peaks[p.pid] = max(kb, self.peaks.get(p.pid, 0))
                    self.names.setdefault(p.pid, p.name())


def run_pandas(df: pd.DataFrame) -> float:
    import ad_pipeline  # noqa: F401  (df.anomaly)

    df.head(20 * 48).anomaly.detect(by="series_id")  # warm-up
    t0 = time.perf_counter()
    out = df.anomaly.detect(by="series_id")
    seconds = time.perf_counter() - t0
    assert len(out) == len(df)
    return seconds


def run_spark(path: str, warm: str, cores: int, arrow_batch: int) -> tuple[float, dict[str, float]]:
    from pyspark.sql import SparkSession

    from ad_pipeline import spark as ads

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", str(2 * cores))
        .config("spark.sql.adaptive.coalescePartitions.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(arrow_batch))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    proc = spark.sparkContext._gateway.proc
    peak = TreePeak(proc.pid)
    peak.start()
    # warm-up: 2 x cores partitions, so that every Python worker runs the engine once
    ads.detect(spark.read.parquet(warm), by="series_id").write.format("noop").mode("overwrite").save()
    t0 = time.perf_counter()
    ads.detect(spark.read.parquet(path), by="series_id").write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - t0
    peak.stop.set()
    peak.join()
    spark.stop()
    mem = {}
    workers = sorted((kb for pid, kb in peak.peaks.items() if "python" in peak.names[pid]), reverse=True)
    mem["python worker (max)"] = workers[0] / 1024 if workers else 0.0
    mem["JVM"] = sum(kb for pid, kb in peak.peaks.items() if peak.names[pid] == "java") / 1024
    return seconds, mem


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would count the parent's RSS at fork, kept across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _warm_up() -> None:
    """Import the package and load the numba kernels in this process (a Dask worker)."""
    import ad_pipeline  # noqa: F401

    make_frame(4, 240).anomaly.detect(by="series_id")


def run_dask(path: str, warm: str, workers: int) -> tuple[float, dict[str, float]]:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import ad_pipeline  # noqa: F401  (ddf.anomaly)

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      memory_limit="3GiB") as cluster, Client(cluster) as client:
        client.run(_warm_up)  # every worker
        dd.read_parquet(warm).anomaly.detect(by="series_id").map_partitions(len).compute()
        ddf = dd.read_parquet(path)
        ddf = ddf.repartition(npartitions=max(2 * workers, ddf.npartitions))
        t0 = time.perf_counter()
        n = int(ddf.anomaly.detect(by="series_id").map_partitions(len).compute().sum())
        seconds = time.perf_counter() - t0
        assert n == len(dd.read_parquet(path))
        peaks = client.run(_peak_rss_mb)
    return seconds, {"worker (max)": max(peaks.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=1_000)
    ap.add_argument("--arrow-batch", type=int, default=100_000, help="spark.sql.execution.arrow.maxRecordsPerBatch")
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()

    df = make_frame(args.series, args.points)
    print(f"{args.series:,} hourly series x {args.points:,} points = {len(df):,} rows; Azure model; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows: list[tuple[str, float, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path, warm = str(Path(tmp) / "data"), str(Path(tmp) / "warm")
        df.to_parquet(path, row_group_size=200_000)
        df.head(20 * args.points).to_parquet(warm)
        t_pandas = run_pandas(df)
        rows.append(("pandas accessor (in process)", t_pandas, {"process": _peak_rss_mb()}))
        print(f"  pandas: {t_pandas:.1f} s", flush=True)
        if not args.skip_spark:
            for cores in (2, 1):
                s, mem = run_spark(path, warm, cores, args.arrow_batch)
                rows.append((f"Spark local[{cores}]", s, mem))
                print(f"  Spark local[{cores}]: {s:.1f} s", flush=True)
        if not args.skip_dask:
            for workers in (2, 1):
                s, mem = run_dask(path, warm, workers)
                rows.append((f"Dask LocalCluster, {workers} worker(s)", s, mem))
                print(f"  Dask {workers} worker(s): {s:.1f} s", flush=True)

    points = len(df)
    print(f"\n{'run':<34}{'seconds':>9}{'points/s':>12}{'pandas/this':>13}  peak memory (MB)")
    for name, s, mem in rows:
        mems = ", ".join(f"{k} {v:.0f}" for k, v in mem.items())
        print(f"{name:<34}{s:>9.1f}{points / s:>12,.0f}{t_pandas / s:>13.2f}  {mems}")
    times = {name: s for name, s, _ in rows}
    for label, one, two in [("Spark", "Spark local[1]", "Spark local[2]"),
                            ("Dask", "Dask LocalCluster, 1 worker(s)", "Dask LocalCluster, 2 worker(s)")]:
        if one in times and two in times:
            print(f"{label}: 1 worker / 2 workers = {times[one] / times[two]:.2f} (2.00 = linear scaling)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
