"""Shared fixtures of the tabular tests: the cardio data set and a small mixed-type table."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

CARDIO = Path(os.environ.get("AD_PIPELINE_CARDIO", Path(__file__).resolve().parents[3] / "shared/tabular/cardio.csv"))


@pytest.fixture(scope="session")
def cardio() -> dict[str, np.ndarray]:
    """cardio.csv as columns: X.1 ... X.21 (float), target (int), key (str)."""
    if not CARDIO.exists():
        pytest.skip(f"cardio.csv not found at {CARDIO}")
    with open(CARDIO, newline="") as f:
        rows = list(csv.DictReader(f))
    cols: dict[str, np.ndarray] = {}
    for name in rows[0]:
        values = [r[name] for r in rows]
        if name == "key":
            cols[name] = np.array(values, dtype=object)
        elif name == "target":
            cols[name] = np.array(values, dtype=np.int64)
        else:
            cols[name] = np.array(values, dtype=np.float64)
    return cols


@pytest.fixture(scope="session")
def cardio_features(cardio: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in cardio.items() if k.startswith("X.")}


@pytest.fixture(scope="session")
def mixed() -> dict[str, np.ndarray]:
    """300 rows: two numeric columns (with NaN), one string column (with None), one planted outlier."""
    rng = np.random.default_rng(42)
    n = 300
    a = rng.normal(10.0, 1.0, n)
    b = rng.normal(0.0, 5.0, n)
    c = rng.choice(np.array(["red", "green", "blue"], dtype=object), n, p=[0.5, 0.3, 0.2]).astype(object)
    a[[5, 17]] = np.nan
    c[[8, 23]] = None
    a[0], b[0], c[0] = 25.0, 60.0, "purple"  # row 0 is the outlier
    return {"a": a, "b": b, "color": c}
