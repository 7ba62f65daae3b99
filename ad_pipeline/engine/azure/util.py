"""Small numeric helpers shared by the Azure model's paths."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..arrays import interp_nan

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

EPS = 1e-8


def normalise(x: FloatArray) -> FloatArray:
    """Min-max normalisation; returned unchanged when max = min.

    >>> normalise(np.array([2.0, 4.0, 3.0])).tolist()
    [0.0, 1.0, 0.5]
    """
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi == lo:
        return x
    return (x - lo) / (hi - lo)


def ffill(x: FloatArray) -> FloatArray:
    """Forward fill of NaN, back fill of leading NaN.

    >>> ffill(np.array([np.nan, 1.0, np.nan, 3.0])).tolist()
    [1.0, 1.0, 1.0, 3.0]
    """
    miss = np.isnan(x)
    if not miss.any() or miss.all():
        return x
    idx = np.where(~miss, np.arange(len(x)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    first = int(np.argmax(~miss))
    out[:first] = x[first]
    return out


def isclose0(v: float, atol: float = 1e-8) -> bool:
    """``numpy.isclose(v, 0)`` for a scalar."""
    return abs(v) <= atol


def despike(v: FloatArray) -> FloatArray:
    """Replace 3-sigma points (``|v-mean|/(std+1e-8) >= 3``) by linear interpolation."""
    z = np.abs(v - v.mean()) / (v.std() + 1e-8)
    spikes = z >= 3
    if not spikes.any():
        return v
    out = v.copy()
    out[spikes] = np.nan
    return interp_nan(out)
