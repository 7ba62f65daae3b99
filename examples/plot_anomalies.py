"""Detect anomalies in a few hourly series with pandas and plot them to a PNG.

Run: python examples/plot_anomalies.py [out.png]   (default: anomalies.png in $AD_PIPELINE_OUT, else ./out/)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import ad_pipeline  # noqa: F401  (registers df.anomaly)


def make_frame(seed: int = 7) -> pd.DataFrame:
    """Three hourly metrics over two weeks: daily seasonality, noise, spikes, a dip, a level shift, gaps."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-03-01", periods=14 * 24, freq="h")
    hours = np.arange(len(ts))
    frames = []
    for key, level, amp in (("checkout", 120.0, 40.0), ("login", 300.0, 90.0), ("search", 80.0, 15.0)):
        y = level + amp * np.sin(2 * np.pi * hours / 24) + rng.normal(0, amp * 0.08, len(ts))
        if key == "checkout":
            y[[60, 200]] += [3.5 * amp, 3.0 * amp]
            y[150] -= 3.0 * amp
        if key == "login":
            y[230:] += 2.5 * amp  # a level shift
            y[100] -= 3.5 * amp
        if key == "search":
            y[rng.choice(len(ts), 12, replace=False)] = np.nan  # missing points
            y[275] += 6 * amp
        frames.append(pd.DataFrame({"service": key, "timestamp": ts, "requests": y}))
    return pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)  # any row order works


def main(path: str | None = None) -> Path:
    out = Path(path) if path else Path(os.environ.get("AD_PIPELINE_OUT", "out")) / "anomalies.png"
    df = make_frame()
    found = df.anomaly.detect(value="requests", by="service", sensitivity=85)
    print(found[found["is_anomaly"]].sort_values(["service", "timestamp"])[["service", "timestamp", "requests"]])
    df.anomaly.plot(value="requests", by="service", sensitivity=85, path=out, title="requests per hour")
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
