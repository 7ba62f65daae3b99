"""Adapter overhead: ``df.anomaly.detect(by="key")`` against the engine batch call it wraps.

10,000 series x 1,000 rows (5-minute data), rows shuffled. For pandas and polars it times

- the adapter: ``df.anomaly.detect(value="value", timestamp="timestamp", by="key")`` (reading
  the columns, sorting, the engine call, scattering the results back, building the frame);
- the engine alone: ``detect_entire_batch(values, offsets, timestamps, keys=...)`` on arrays
  already sorted by key and timestamp;

and prints the ratio adapter / engine (targets: <= 1.3 polars, <= 1.6 pandas) and the peak
memory (RSS) of each measurement, each run in its own subprocess. It also splits each adapter
call into the engine call it makes and the rest (the conversion overhead, in seconds), which
is what the adapters control: the engine time changes as the models change, and the faster
the model the harder the ratio target (``--method auto`` is the fastest model).

Run: python -m benchmarks.frames [--series 10000] [--rows 1000] [--method azure|auto] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def make_arrays(n_series: int, n_rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Sorted arrays (key-major, time-minor): keys as strings, 5-minute timestamps, seasonal values."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)
    base = 10 + np.sin(2 * np.pi * t / 288)
    values = (np.tile(base, n_series) + rng.normal(0, 0.3, n_series * n_rows)).astype(np.float64)
    spikes = rng.choice(n_series * n_rows, n_series, replace=False)
    values[spikes] += 8
    ts = np.tile(np.datetime64("2024-01-01", "ns") + t * np.timedelta64(5, "m"), n_series)
    names = np.array([f"host-{i:05d}" for i in range(n_series)], dtype=object)
    return {"key": np.repeat(names, n_rows), "timestamp": ts, "value": values}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(which: str, n_series: int, n_rows: int, repeat: int, method: str) -> dict[str, float]:
    """Run one measurement in this process: wall and CPU seconds, peak RSS (MB)."""
    import ad_pipeline as ad
    from ad_pipeline.engine import layout

    engine_seconds = [0.0, 0.0]  # the engine call inside the adapter, timed around the function it calls
    batch = layout.detect_entire_batch

    def timed_batch(*args, **kwargs):  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return batch(*args, **kwargs)
        finally:
            engine_seconds[:] = [time.perf_counter() - wall, time.process_time() - cpu]

    layout.detect_entire_batch = timed_batch  # type: ignore[assignment]  (a benchmark's stopwatch, not a test)

    arrays = make_arrays(n_series, n_rows)
    n = n_series * n_rows
    # warm-up (imports, JIT compilation) on two series, outside the timings
    ad.detect_entire_batch(arrays["value"][: 2 * n_rows], [0, n_rows, 2 * n_rows], arrays["timestamp"][: 2 * n_rows],
                           method=method)
    walls, cpus, inner_walls, inner_cpus = [], [], [], []
    if which == "engine":
        offsets = np.arange(0, n + 1, n_rows, dtype=np.int64)
        names = arrays["key"][::n_rows]
        before = _rss_mb()
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            ad.detect_entire_batch(arrays["value"], offsets, arrays["timestamp"], keys=names, method=method)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        inner_walls, inner_cpus = walls, cpus
    else:
        perm = np.random.default_rng(1).permutation(n)
        data = {k: v[perm] for k, v in arrays.items()}
        del arrays
        if which == "pandas":
            import pandas as pd

            df = pd.DataFrame(data)
        else:
            import polars as pl

            df = pl.DataFrame({"key": data["key"].astype(str), "timestamp": data["timestamp"], "value": data["value"]})
        del data
        before = _rss_mb()
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            out = df.anomaly.detect(value="value", timestamp="timestamp", by="key", method=method)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            inner_walls.append(engine_seconds[0])
            inner_cpus.append(engine_seconds[1])
            assert len(out) == n
            del out
    best = int(np.argmin(walls))
    return {
        "seconds": walls[best],
        "cpu_seconds": cpus[best],
        "engine_inside": inner_walls[best],
        "engine_inside_cpu": inner_cpus[best],
        "overhead": walls[best] - inner_walls[best],
        "overhead_cpu": cpus[best] - inner_cpus[best],
        "rss_before_mb": before,
        "peak_rss_mb": _rss_mb(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--rows", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--method", default="azure", choices=["azure", "auto"])
    ap.add_argument("--only", choices=["engine", "pandas", "polars"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.series, args.rows, args.repeat, args.method)))
        return
    res = {}
    for which in ("engine", "pandas", "polars"):
        cmd = [sys.executable, __file__, "--only", which, "--series", str(args.series), "--rows", str(args.rows),
               "--repeat", str(args.repeat), "--method", args.method]
        res[which] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    n = args.series * args.rows
    print(f"{args.series:,} series x {args.rows:,} rows = {n:,} rows, shuffled, method={args.method!r} "
          f"(best of {args.repeat}; wall-clock and CPU seconds)")
    for which in ("engine", "pandas", "polars"):
        r = res[which]
        split = "" if which == "engine" else (
            f"   = engine {r['engine_inside']:.2f} + conversion {r['overhead']:.2f} s wall, "
            f"{r['overhead_cpu']:.2f} s CPU ({r['overhead_cpu'] / n * 1e9:.0f} ns/row)")
        print(f"  {which:7s} {r['seconds']:8.2f} s wall {r['cpu_seconds']:8.2f} s CPU   peak RSS {r['peak_rss_mb']:6.0f} MB "
              f"(+{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB over the input){split}")
    eng = res["engine"]
    for which, target in (("polars", 1.3), ("pandas", 1.6)):
        r = res[which]
        wall, cpu = r["seconds"] / eng["seconds"], r["cpu_seconds"] / eng["cpu_seconds"]
        # the same adapter call with the engine time of the direct call (removes the engine's own noise)
        same = (eng["cpu_seconds"] + r["overhead_cpu"]) / eng["cpu_seconds"]
        print(f"  ratio {which}/engine = {wall:.3f} wall, {cpu:.3f} CPU, {same:.3f} conversion-only CPU "
              f"(target <= {target}) {'ok' if max(wall, cpu) <= target else 'OVER'}")


if __name__ == "__main__":
    main()
