"""Speed and memory of the engine on many synthetic hourly series, in one process.

Prints, for ``--series`` series of ``--points`` hourly points (daily seasonality, noise, spikes):

- entire detect through one ``ad.detect_entire_batch`` call: points/s (target >= 300,000);
- last detect over the same series, each cut to its suggested window (``4 * period + 1``),
  through one ``ad.detect_last_batch`` call: series/s (target >= 20,000);
- the peak resident memory of the process (target < 3 GB);
- one ``--big``-point series through ``ad.detect_entire``;
- how many times slower entire detect is than a plain numpy ``rfft`` + ``irfft`` of the same
  array (a yardstick of what the machine does per point).

Medians over ``--repeats`` runs (the big series runs once). Run from the repository root::

    .venv/bin/python -m benchmarks.speed                      # 10,000 x 1,000, the issue's check
    .venv/bin/python -m benchmarks.speed --series 500 --big 0   # a quick look
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import ad_pipeline as ad


def synthetic(n_series: int, n_points: int, seed: int = 0) -> np.ndarray:
    """``n_series x n_points`` hourly values: level + daily cycle + drift + noise + 0.5% spikes."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    level = rng.uniform(10, 1000, size=(n_series, 1))
    amp = level * rng.uniform(0.05, 0.3, size=(n_series, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n_series, 1))
    drift = level * rng.normal(0, 1e-4, size=(n_series, 1)) * t
    noise = rng.normal(size=(n_series, n_points)) * amp * rng.uniform(0.05, 0.2, size=(n_series, 1))
    x = level + amp * np.sin(2 * np.pi * t / 24 + phase) + drift + noise
    spikes = rng.random((n_series, n_points)) < 0.005
    x[spikes] += rng.choice([-1.0, 1.0], size=int(spikes.sum())) * amp.repeat(n_points, 1)[spikes] * 3
    return x


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls and the last result."""
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=1_000)
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    ap.add_argument("--big", type=int, default=1_000_000, help="points of the single long series (0: skip)")
    ap.add_argument("--timestamps", action="store_true", help="pass hourly timestamps instead of granularity")
    ap.add_argument("--method", default="azure", choices=["azure", "auto"], help="the detector (default azure)")
    args = ap.parse_args(argv)

    n_s, n_p = args.series, args.points
    x2d = synthetic(n_s, n_p)
    values = x2d.ravel()
    offsets = np.arange(0, n_s * n_p + 1, n_p, dtype=np.int64)
    kw: dict[str, Any] = {"method": args.method}
    if args.timestamps:
        one = np.datetime64("2024-01-01T00:00") + np.arange(n_p) * np.timedelta64(1, "h")
        kw["timestamps"] = np.tile(one, n_s)
    else:
        kw["granularity"] = "hourly"
    print(f"# {n_s:,} series x {n_p:,} hourly points ({n_s * n_p:,} points), "
          f"{'timestamps' if args.timestamps else 'granularity=hourly'}, method={args.method}, repeats={args.repeats}")
    print(f"# python {sys.version.split()[0]}, numpy {np.__version__}, ad_pipeline {ad.__version__}")

    # warm-up: imports, numba cache loads, lookup tables (not counted)
    t0 = time.perf_counter()
    w = min(n_s, 20)
    wkw = {k: (v[: w * n_p] if k == "timestamps" else v) for k, v in kw.items()}
    ad.detect_entire_batch(values[: w * n_p], offsets[: w + 1], **wkw)
    ad.detect_last_batch(values[: w * n_p], offsets[: w + 1], **wkw)
    print(f"warm-up (first calls: imports, compiled-code loads): {time.perf_counter() - t0:.2f} s")

    t_entire, res = timed(lambda: ad.detect_entire_batch(values, offsets, **kw), args.repeats)
    n_flags = int(res.is_anomaly.sum())
    periods, counts = np.unique(res.period, return_counts=True)
    print(f"entire detect: {t_entire:.2f} s, {n_s * n_p / t_entire:,.0f} points/s "
          f"(target >= 300,000); {n_flags:,} flags; periods {dict(zip(periods.tolist(), counts.tolist(), strict=True))}")

    # last detect on each series' suggested window (4 * period + 1, or the hourly default 169)
    win = np.where(res.period > 0, 4 * res.period + 1, 169).clip(max=n_p)
    last_vals = np.concatenate([x2d[i, n_p - win[i]:] for i in range(n_s)])
    last_offs = np.concatenate(([0], np.cumsum(win))).astype(np.int64)
    lkw = dict(kw)
    if args.timestamps:
        lkw["timestamps"] = np.concatenate([one[n_p - win[i]:] for i in range(n_s)])
    t_last, lres = timed(lambda: ad.detect_last_batch(last_vals, last_offs, **lkw), args.repeats)
    same_window = float(np.mean(lres.suggested_window == win))
    print(f"last detect: {t_last:.3f} s, {n_s / t_last:,.0f} series/s (target >= 20,000); "
          f"windows {int(win.min())}..{int(win.max())} points; {int(lres.is_anomaly.sum()):,} flagged; "
          f"suggested window = window used for {same_window:.0%}")

    # yardstick: numpy FFT round trip over the same array
    t_fft, _ = timed(lambda: np.fft.irfft(np.fft.rfft(x2d, axis=1), n=n_p, axis=1), max(args.repeats, 3))
    print(f"numpy rfft+irfft of the same {n_s:,} x {n_p:,} array: {t_fft:.3f} s "
          f"({n_s * n_p / t_fft:,.0f} points/s); entire detect takes {t_entire / t_fft:.0f}x as long")
    print(f"peak RSS after the batches: {peak_rss_mb():,.0f} MB (target < 3,000 MB)")

    if args.big:
        big = synthetic(1, args.big, seed=1).ravel()
        bkw: dict[str, Any] = {"granularity": "hourly", "method": args.method}
        t0 = time.perf_counter()
        bres = ad.detect_entire(big, **bkw)
        t_big = time.perf_counter() - t0
        print(f"one {args.big:,}-point series: {t_big:.2f} s ({args.big / t_big:,.0f} points/s), "
              f"period {bres.period}, {int(bres.is_anomaly.sum()):,} flags")
        print(f"peak RSS at the end: {peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
