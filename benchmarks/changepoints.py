"""Change-point quality on synthetic series: F1, precision and recall.

Each series: unit Gaussian noise, optionally a daily profile (hourly data, period 24, detected),
and changes at least 60 points apart: level shifts of 4-8 sigma or slope changes whose effect
reaches 4-8 sigma within 20 points (0.2-0.4 sigma per point). Every series is then scaled and
offset by a random factor. A detection counts when it lies within +-5 points of a true change;
each true change is matched once.

    .venv/bin/python benchmarks/changepoints.py [--series 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ad_pipeline as ad

TOLERANCE = 5
MIN_GAP = 60


def make_series(n_series: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, dict]]:
    """``(values, true change positions, parameters)`` per series."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_series):
        n = int(rng.integers(300, 800))
        changes = []
        t = int(rng.integers(40, 100))
        while t < n - 40:
            changes.append(t)
            t += int(rng.integers(MIN_GAP, 160))
        level = np.zeros(n)
        slope = np.zeros(n)
        for c in changes:
            size = rng.uniform(4, 8) * rng.choice([-1.0, 1.0])
            if rng.random() < 0.5:
                level[c:] += size
            else:
                slope[c:] += size / 20.0
        x = level + np.cumsum(slope) + rng.normal(size=n)
        params: dict = {"period": 0}
        if rng.random() < 0.5:
            x += rng.uniform(2, 5) * np.sin(2 * np.pi * np.arange(n) / 24 + rng.uniform(0, 6))
            params = {"granularity": "hourly", "period": None}
        scale = 10 ** rng.uniform(-2, 3)
        out.append((x * scale + rng.uniform(-1000, 1000), np.array(changes), params))
    return out


def match(detected: np.ndarray, truth: np.ndarray, tolerance: int = TOLERANCE) -> int:
    """Number of true changes matched by a detection within ``tolerance`` (each matched once)."""
    used = np.zeros(len(detected), dtype=bool)
    hits = 0
    for c in truth:
        near = np.flatnonzero(~used & (np.abs(detected - c) <= tolerance))
        if len(near):
            used[near[np.argmin(np.abs(detected[near] - c))]] = True
            hits += 1
    return hits


def score(series: list[tuple[np.ndarray, np.ndarray, dict]], **params) -> dict[str, float]:
    """Pooled F1, precision and recall of :func:`ad_pipeline.detect_change_points` on ``series``."""
    tp = n_det = n_true = 0
    for x, truth, p in series:
        det = np.flatnonzero(ad.detect_change_points(x, **(p | params)).is_change_point)
        tp += match(det, truth)
        n_det += len(det)
        n_true += len(truth)
    precision = tp / n_det if n_det else 1.0
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "series": len(series), "changes": n_true}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    series = make_series(args.series, args.seed)
    t0 = time.perf_counter()
    s = score(series)
    dt = time.perf_counter() - t0
    print(
        f"change points: F1 {s['f1']:.3f}  precision {s['precision']:.3f}  recall {s['recall']:.3f}  "
        f"series {s['series']}  true changes {s['changes']}  ({dt:.2f} s)"
    )


if __name__ == "__main__":
    main()
