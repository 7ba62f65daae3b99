"""Filling missing grid points (reference §7 and AZURE_API.md, Imputation)."""

from __future__ import annotations

import numpy as np

from ..arrays import interp_nan
from .util import FloatArray, ffill

MAX_SPAN = 17280
_PHASE_WEIGHTS = (0.1, 0.3, 0.6, 0.6, 0.3, 0.1)  # 3 periods back, 3 periods forward
_SHORT_GAP = 6


def _gaps(miss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each run of missing points."""
    d = np.diff(np.concatenate(([0], miss.astype(np.int8), [0])))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _runs(miss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per point: the length of its run of missing points and how many of them start at it (0 if observed)."""
    starts, ends = _gaps(miss)
    lengths = ends - starts
    at = np.flatnonzero(miss)
    run = np.zeros(len(miss), dtype=np.int64)
    ahead = np.zeros(len(miss), dtype=np.int64)
    run[at] = np.repeat(lengths, lengths)
    ahead[at] = np.repeat(ends, lengths) - at
    return run, ahead


def _short_gaps(x: FloatArray, period: int) -> FloatArray:
    """Cubic-spline fill of the gaps of at most 6 points and at most period / 4 (others stay NaN).

    Where the 2 + 2 observed neighbours rise or fall monotonically and the spline leaves their
    range, the gap is filled linearly instead; every filled value is clipped to the observed range.
    Observed points keep their values.
    """
    from scipy.interpolate import make_interp_spline

    n = len(x)
    miss = np.isnan(x)
    idx = np.arange(n)
    # the B-spline form the release's interp1d(kind="cubic") evaluates: at observed points it
    # returns the values up to rounding, which decides the monotonic-neighbour test below
    full = make_interp_spline(idx[~miss], x[~miss], k=3)(idx)
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    for i, e in zip(*_gaps(miss), strict=True):
        m = int(e - i)
        if m > _SHORT_GAP or m > period / 4:
            full[i:e] = np.nan
            continue
        # the release skips index 0 among the neighbours
        near = [float(full[k]) for k in (i - 2, i - 1, e, e + 1) if 0 < k < n and not miss[k]]
        if len(near) > 2 and (near == sorted(near) or near == sorted(near, reverse=True)):
            a, b = min(near[0], near[-1]), max(near[0], near[-1])
            if np.any((full[i:e] < a) | (full[i:e] > b)):
                full[i:e] = np.linspace(x[i - 1], x[e], m + 2)[1:-1]
        full[i:e] = np.clip(full[i:e], lo, hi)
    # observed points keep their values: the spline returns them only up to rounding, and on a
    # series spanning tens of orders of magnitude that rounding rewrote small values entirely
    # (1e10 became 2e21 beside values of 1e38), so flags were judged on numbers never given
    full[~miss] = x[~miss]
    return full


def _same_phase(v: FloatArray, i: int, period: int, run: np.ndarray, ahead: np.ndarray, step: int) -> list[float]:
    """Up to 3 values one, two and three periods from ``i`` (``step`` = -1 back, +1 forward), the
    release's walk: a missing point counts as one of the 3 and makes the walk skip ahead in its gap."""
    out: list[float] = []
    p = period * step
    j = i + p
    left = 3
    while 0 <= j < len(v) and left > 0:
        if ahead[j] > 0:
            if step == 1:
                j += int(np.ceil((ahead[j] - p) / p)) * p
            else:
                j += int(np.ceil((run[j] - ahead[j]) / p)) * p * -1
        else:
            out.append(float(v[j]))
        j += p
        left -= 1
    return out


def fill_auto(x: FloatArray, period: int) -> FloatArray:
    """Spline for short gaps, then a same-phase weighted average (weights .1 .3 .6 | .6 .3 .1,
    shifted inwards when a side has fewer values), then linear interpolation."""
    if int(np.count_nonzero(~np.isnan(x))) < 4:
        return ffill(x)  # the release falls back to the previous value when the spline fails
    out = _short_gaps(x, period)
    miss = np.isnan(out)
    if miss.any():
        run, ahead = _runs(miss)
        known = out.copy()
        for i in np.flatnonzero(miss):
            back = _same_phase(known, int(i), period, run, ahead, -1)[::-1]
            fwd = _same_phase(known, int(i), period, run, ahead, 1)
            if back or fwd:
                w = np.asarray(_PHASE_WEIGHTS[3 - len(back) : 3 + len(fwd)])
                out[i] = float(np.average(np.asarray(back + fwd), weights=w))
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
