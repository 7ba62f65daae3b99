"""PROVISIONAL placeholder of change-point detection (to be replaced)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .model import GridSeries


def change_points(batch: Sequence[GridSeries]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """One ``(period, is_change_point, confidence_scores)`` per series, aligned with its grid."""
    out = []
    for gs in batch:
        x = gs.values
        n = len(x)
        out.append((0, np.zeros(n, dtype=bool), np.zeros(n)))
    return out
