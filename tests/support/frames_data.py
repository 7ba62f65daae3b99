"""Shared data for the pandas/polars adapter tests: long frames as plain numpy columns.

(A plain module, not conftest.py: other test folders import their own conftest by name.)
"""

from __future__ import annotations

import numpy as np


def long_columns(
    n_series: int = 4,
    n_points: int = 60,
    *,
    seed: int = 0,
    shuffle: bool = True,
    nan_every: int = 17,
    step_minutes: int = 60,
    short_series: bool = False,
) -> dict[str, np.ndarray]:
    """Columns ``key, timestamp, value, value2, row`` of ``n_series`` seasonal series with spikes.

    ``row`` numbers the rows in their final order (to check the adapters keep it). With
    ``short_series`` one more series ``"short"`` has 5 points (invalid: fewer than 12).
    """
    rng = np.random.default_rng(seed)
    keys, ts, v1, v2 = [], [], [], []
    t = np.arange(n_points)
    start = np.datetime64("2024-01-01T00:00", "ns")
    for i in range(n_series):
        y = 10 + i + np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.2, n_points)
        y[(7 * i + 5) % n_points] += 9
        y[::nan_every] = np.nan
        keys += [f"s{i}"] * n_points
        ts.append(start + t * np.timedelta64(step_minutes, "m"))
        v1.append(y)
        v2.append(-y[::-1])
    if short_series:
        keys += ["short"] * 5
        ts.append(start + np.arange(5) * np.timedelta64(step_minutes, "m"))
        v1.append(np.arange(5.0))
        v2.append(np.arange(5.0))
    cols = {
        "key": np.array(keys, dtype=object),
        "timestamp": np.concatenate(ts),
        "value": np.concatenate(v1),
        "value2": np.concatenate(v2),
    }
    n = len(cols["key"])
    perm = rng.permutation(n) if shuffle else np.arange(n)
    out = {k: v[perm] for k, v in cols.items()}
    out["row"] = np.arange(n)
    return out


