"""Small compiled (numba) kernels for hot loops of the models: the numbers of the code they
reproduce, without its temporary arrays or its per-window Python calls."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@njit(cache=True, nogil=True)
def _bisect_right(buf, lo, hi, x):  # type: ignore[no-untyped-def]
    """Python's ``bisect.bisect_right(buf[lo:hi], x) + lo`` (same steps, also on unsorted data)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if x < buf[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True)
def sorted_median32(buf, m):  # type: ignore[no-untyped-def]
    """Median of the sorted float32 ``buf[:m]``, the two middle values averaged in float32 (the release's)."""
    if m % 2 == 1:
        return buf[m // 2]
    return (buf[m // 2 - 1] + buf[m // 2]) / np.float32(2.0)


@njit(cache=True, nogil=True)
def _running_median32(data, window):  # type: ignore[no-untyped-def]
    n = len(data)
    w = window // 2 * 2 + 1
    h = w // 2
    val = data.astype(np.float32)
    ans = val.copy()
    if n < w:
        return ans
    buf = np.zeros(w, dtype=np.float32)
    for i in range(w):
        k = _bisect_right(buf, 0, i, val[i])
        for q in range(i, k, -1):
            buf[q] = buf[q - 1]
        buf[k] = val[i]
        if i >= h:
            ans[i - h] = sorted_median32(buf, i + 1)
    for i in range(h + 1, n - h):
        k = _bisect_right(buf, 0, w, val[i - h - 1]) - 1
        for q in range(k, w - 1):
            buf[q] = buf[q + 1]
        k = _bisect_right(buf, 0, w - 1, val[i + h])
        for q in range(w - 1, k, -1):
            buf[q] = buf[q - 1]
        buf[k] = val[i + h]
        ans[i] = sorted_median32(buf, w)
    m = w
    for i in range(n - h, n):
        # the leaving value is looked up in float64 among float32 values: when it rounded up,
        # its predecessor is removed instead (and from position -1 the buffer wraps around)
        k = _bisect_right(buf, 0, m, data[i - h - 1]) - 1
        if k < 0:
            buf[w - 1] = buf[0]
            k = 0
        for q in range(k, m - 1):
            buf[q] = buf[q + 1]
        m -= 1
        ans[i] = sorted_median32(buf, m)
    return ans


def running_median32(v: FloatArray, window: int) -> NDArray[np.float32]:
    """The release's running median: float32, window ``2 (window // 2) + 1``, centred, the windows
    shrinking at the ends (``v[max(0, t-h) .. min(n-1, t+h)]``); a series shorter than the window
    is returned as float32. Its quirk is kept: at the ends a value that rounded up to float32
    makes its predecessor leave the window instead.

    >>> running_median32(np.array([5.0, 1.0, 4.0, 2.0, 3.0]), 2).tolist()
    [3.0, 4.0, 2.0, 3.0, 2.5]
    """
    x = np.ascontiguousarray(v, dtype=np.float64)
    return _running_median32(x, int(window))  # type: ignore[no-any-return]
