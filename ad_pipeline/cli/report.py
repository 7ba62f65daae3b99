"""What a command-line scan shows: progress (a tqdm bar on a terminal, lines elsewhere), the summary,
and PNGs of the most anomalous series."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Any

import numpy as np

PROG = "ad-pipeline"


class _ProgressLines:
    """Progress where there is no terminal (logs, CI, Airflow): a stderr line at each 10% or every 30 s."""

    EVERY_SECONDS = 30.0

    def __init__(self, total: int) -> None:
        self.total, self.done, self.next_percent = max(total, 1), 0, 10
        self.started = self.last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        percent = 100 * self.done / self.total
        if percent >= self.next_percent or now - self.last >= self.EVERY_SECONDS:
            print(f"{PROG}: {self.done:,}/{self.total:,} series ({percent:.0f}%), {now - self.started:.1f} s",
                  file=sys.stderr, flush=True)
            self.next_percent, self.last = (int(percent) // 10 + 1) * 10, now

    def close(self) -> None: ...


class _NoProgress:
    def update(self, n: int) -> None: ...
    def close(self) -> None: ...


def progress(total: int, quiet: bool) -> Any:
    """A tqdm bar on a terminal (shown once a scan has run 2 s), else lines every 10% (none if quiet)."""
    if quiet:
        return _NoProgress()
    if not sys.stderr.isatty():
        return _ProgressLines(total)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the duckdb extra
        return _ProgressLines(total)
    return tqdm(total=total, unit=" series", delay=2.0, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def summary(stats: Any, kind: str, plan: Any, elapsed: float, args: argparse.Namespace) -> str:
    rate = stats.series / elapsed if elapsed > 0 else float("inf")
    what = {"entire": "anomalies", "last": "anomalous last points", "change_points": "change points"}[
        kind
    ]
    lines = [
        f"scanned {stats.series:,} series ({stats.points:,} points) in {elapsed:.1f} s ({rate:,.0f} series/s): "
        f"{stats.flagged:,} {what} in {stats.series_flagged:,} series"
    ]
    if stats.invalid:
        lines.append(f"{stats.invalid:,} series could not be scanned, e.g. {stats.first_error}")
    if args.into:
        lines.append(f"results: table {args.into} in {args.db}")
    if args.out:
        lines.append(f"results: {args.out}")
    return "\n".join(lines)


def plot_top_series(stats: Any, plan: Any, kind: str, folder: str, quiet: bool) -> list[str]:
    """One PNG per most-anomalous series (``plot.plot_series``); returns the paths."""
    try:
        from ..plot import plot_series
    except ImportError:  # pragma: no cover - plot.py ships with the package
        print(f"{PROG}: --plot needs ad_pipeline.plot; skipped", file=sys.stderr)
        return []
    paths = []
    for rank, (score, _, t) in enumerate(sorted(stats.top, key=lambda x: (-x[0], x[1])), start=1):
        key = ", ".join(str(t.column(c)[0].as_py()) for c in plan.keys)
        panel: dict[str, Any] = {
            "title": f"{key}: {int(score)} flagged",
            "value": _floats(t.column(plan.value)),
            "timestamp": _timestamps(t.column(plan.ts)),
        }
        for name in ("expected_value", "lower_boundary", "upper_boundary"):
            if name in t.column_names:
                panel[name] = _floats(t.column(name))
        for name in ("is_anomaly", "is_positive_anomaly", "is_negative_anomaly", "is_change_point"):
            if name in t.column_names:
                panel[name] = _bools(t.column(name))
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:80]
        path = os.path.join(folder, f"{rank:02d}_{safe}.png")
        plot_series([panel], path)
        paths.append(path)
    if not quiet:
        print(f"plots: {len(paths)} PNG(s) in {folder}", file=sys.stderr)
    return paths


def _floats(col: Any) -> np.ndarray:
    import pyarrow as pa

    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _bools(col: Any) -> np.ndarray:
    import pyarrow.compute as pc

    return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)


def _timestamps(col: Any) -> np.ndarray | None:
    import pyarrow as pa

    try:
        return np.asarray(col.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
