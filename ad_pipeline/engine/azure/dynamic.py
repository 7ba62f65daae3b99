"""Dynamic-threshold path (reference §2): ESD/Z on the normalised series, spline trend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..arrays import interp_nan
from .esd import esd, flags_from, max_outliers, z_test
from .spline import guess_period, spline_trend
from .util import EPS, BoolArray, FloatArray, normalise


@dataclass
class DynamicResult:
    expected: FloatArray
    flags: BoolArray


def dynamic_detect(x: FloatArray, ratio: float, last: bool) -> DynamicResult:
    """Flags and the spline-trend expected values of a non-seasonal series."""
    n = len(x)
    z = normalise(x)
    k = max_outliers(n, ratio)
    if k >= 1:
        flags = flags_from([esd(z, k, last), z_test(z, k, last)], n, k)
    else:
        flags = np.zeros(n, dtype=bool)
    if flags.any():
        y = x.copy()
        y[flags] = np.nan
        y = interp_nan(y)
        expected = spline_trend(y, 2 * guess_period(y) - 1)
    else:
        expected = spline_trend(x, min(n // 3, 512))
    flags &= np.abs(x - expected) >= EPS
    return DynamicResult(expected, flags)
