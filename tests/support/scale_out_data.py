"""Shared data for the Spark and Dask parity tests: many short series of mixed shapes in one long frame.

(A plain module, not conftest.py, so tests/spark and tests/dask both import it.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# (step, pandas frequency) of the series; each series gets one
STEPS = [("5min", "5min"), ("hourly", "h"), ("daily", "D"), ("minutely", "min"), ("weekly", "W-MON")]


def mixed_frame(n_series: int = 500, *, seed: int = 0, long_every: int = 25) -> pd.DataFrame:
    """Columns ``region`` (str), ``host`` (int), ``metric`` (str), ``timestamp``, ``value``, ``note``.

    Three key columns (strings and ints); lengths 24-96 and every ``long_every``-th series 250-400
    points (longer than a small Arrow batch, so such a series straddles batches); five
    granularities; seasonal values with spikes, level shifts and a few missing points. Three
    series in 50 are invalid: too short, all missing, or with duplicate timestamps. One series has a
    null region. Rows are shuffled.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        n = int(rng.integers(250, 401)) if i % long_every == 7 else int(rng.integers(24, 97))
        name, freq = STEPS[i % len(STEPS)]
        t = np.arange(n)
        period = (4, 6, 8, 12)[i % 4]
        y = 10 * (i % 7 + 1) + np.sin(2 * np.pi * t / period) * (1 + i % 3) + rng.normal(0, 0.3, n)
        y[int(rng.integers(0, n))] += rng.choice([-1, 1]) * 12
        if i % 4 == 1:  # a level shift (a change point)
            y[n // 2 :] += 8
        y[rng.random(n) < 0.03] = np.nan
        ts = pd.date_range("2024-01-01", periods=n, freq=freq)
        bad = i % 50
        if bad == 3:  # too short
            y, ts = y[:5], ts[:5]
        elif bad == 11:  # all missing
            y = np.full(n, np.nan)
        elif bad == 19:  # duplicate timestamps
            ts = ts.insert(3, ts[3])[:n]
        region = ("eu", "us", "apac", "emea")[i % 4]
        parts.append(
            pd.DataFrame(
                {
                    "region": region,
                    "host": i // 4,
                    "metric": f"m{i % 5}",
                    "timestamp": ts,
                    "value": y,
                    "note": f"{name}-{i}",
                }
            )
        )
    df = pd.concat(parts, ignore_index=True)
    df.loc[df["note"] == f"{STEPS[42 % len(STEPS)][0]}-42", "region"] = None  # a null key
    return df.iloc[rng.permutation(len(df))].reset_index(drop=True)


KEYS = ["region", "host", "metric"]


def _plain(s: pd.Series) -> list[Any]:
    """A column as Python values, every kind of missing value as None (NaN, NA, NaT, null)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = s.astype("datetime64[ns]")
    out = s.astype(object)
    return [None if pd.isna(v) else v for v in out.tolist()]


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame, keys: list[str], timestamp: str | None) -> None:
    """The same columns (in order) and, after sorting by key and time, exactly the same values."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    order = [*keys, *([timestamp] if timestamp else [])]
    g = got.sort_values(order, na_position="last", kind="stable", ignore_index=True)
    w = want.sort_values(order, na_position="last", kind="stable", ignore_index=True)
    for c in want.columns:
        gv, wv = _plain(g[c]), _plain(w[c])
        if gv != wv:
            bad = [i for i, (a, b) in enumerate(zip(gv, wv, strict=True)) if a != b]
            raise AssertionError(f"column {c!r} differs in {len(bad)} rows, e.g. row {bad[0]}: {gv[bad[0]]!r} != {wv[bad[0]]!r}")
