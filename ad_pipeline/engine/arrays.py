"""Small array helpers shared by every model (one place for each idea)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def interp_nan(x: FloatArray) -> FloatArray:
    """A new array with NaN filled by linear interpolation, constant at the ends (all NaN: unchanged).

    >>> interp_nan(np.array([np.nan, 1.0, np.nan, 3.0, np.nan])).tolist()
    [1.0, 1.0, 2.0, 3.0, 3.0]
    """
    out = np.array(x, dtype=np.float64, copy=True)
    miss = np.isnan(out)
    if miss.any() and not miss.all():
        idx = np.arange(len(out))
        out[miss] = np.interp(idx[miss], idx[~miss], out[~miss])
    return out
