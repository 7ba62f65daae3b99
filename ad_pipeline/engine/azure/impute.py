"""Filling missing grid points (reference §7 and AZURE_API.md, Imputation)."""

from __future__ import annotations

import numpy as np

from .util import FloatArray, ffill, interp_nan

MAX_SPAN = 17280
_PHASE_OFFSETS = np.array([-3, -2, -1, 1, 2, 3])
_PHASE_WEIGHTS = np.array([0.1, 0.3, 0.6, 0.6, 0.3, 0.1])


def _gaps(miss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of missing points."""
    d = np.diff(np.concatenate(([0], miss.astype(np.int8), [0])))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def fill_auto(x: FloatArray, period: int) -> FloatArray:
    """Spline for short gaps, then same-phase weighted average, then linear interpolation."""
    n = len(x)
    miss = np.isnan(x)
    out = x.copy()
    idx = np.arange(n)
    obs = ~miss
    starts, ends = _gaps(miss)
    short = np.zeros(n, dtype=bool)
    for s, e in zip(starts, ends, strict=True):
        if e - s <= 6 and e - s <= period / 4:
            short[s:e] = True
    if short.any() and obs.sum() >= 4:
        from scipy.interpolate import CubicSpline

        cs = CubicSpline(idx[obs], x[obs])
        lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
        out[short] = np.clip(cs(idx[short]), lo, hi)
    rest = np.flatnonzero(np.isnan(out))
    if len(rest):
        pos = rest[:, None] + _PHASE_OFFSETS[None, :] * period
        valid = (pos >= 0) & (pos < n)
        vals = np.where(valid, x[np.clip(pos, 0, n - 1)], np.nan)
        w = np.where(np.isnan(vals), 0.0, _PHASE_WEIGHTS[None, :])
        tot = w.sum(axis=1)
        num = np.nansum(vals * w, axis=1)
        ok = tot > 0
        out[rest[ok]] = num[ok] / tot[ok]
    return interp_nan(out)


def fill(x: FloatArray, mode: str, fixed_value: float | None, period: int) -> FloatArray:
    """Fill NaN of ``x`` by ``mode`` (``auto`` needs ``period > 1``; ``notFill`` is not a fill)."""
    if mode == "previous":
        return ffill(x)
    if mode == "linear":
        return interp_nan(x)
    if mode in ("fixed", "zero"):
        v = 0.0 if mode == "zero" or fixed_value is None else float(fixed_value)
        return np.where(np.isnan(x), v, x)
    if mode == "auto":
        return fill_auto(x, period)
    raise ValueError(f"not a fill mode: {mode!r}")  # pragma: no cover - checked by params


def fills(mode: str, period: int, n_missing: int, span: int) -> bool:
    """Whether the model fills the gaps (else the observed points are treated as contiguous)."""
    if n_missing == 0 or span > MAX_SPAN or mode == "notFill":
        return False
    if mode == "auto":
        return period > 1
    return True
