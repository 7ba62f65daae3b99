"""Small compiled (numba) kernels for hot loops of the models: same numbers as the numpy code
they replace, without its temporary arrays or its per-window Python calls."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@njit(cache=True, nogil=True)
def _insert_sorted(buf, size, x):  # type: ignore[no-untyped-def]
    """Insert ``x`` into the sorted ``buf[:size]`` (room for one more); returns the new size."""
    k = np.searchsorted(buf[:size], x)
    for q in range(size, k, -1):
        buf[q] = buf[q - 1]
    buf[k] = x
    return size + 1


@njit(cache=True, nogil=True)
def _centred_median(v, h, out):  # type: ignore[no-untyped-def]
    n = len(v)
    buf = np.empty(min(2 * h + 1, n))
    size = 0
    # window of point t: v[max(0, t - h) .. min(n - 1, t + h)], kept sorted in buf[:size]
    for j in range(min(h, n - 1) + 1):
        size = _insert_sorted(buf, size, v[j])
    for t in range(n):
        if size % 2 == 1:
            out[t] = buf[size // 2]
        else:
            out[t] = (buf[size // 2 - 1] + buf[size // 2]) / 2.0
        drop = t - h
        if drop >= 0:
            x = v[drop]
            k = np.searchsorted(buf[:size], x)
            for q in range(k, size - 1):
                buf[q] = buf[q + 1]
            size -= 1
        add = t + 1 + h
        if add < n:
            size = _insert_sorted(buf, size, v[add])


def centred_median(v: FloatArray, h: int) -> FloatArray:
    """Median of ``v[max(0, t - h) .. min(n - 1, t + h)]`` for every ``t`` (windows shrink at the edges).

    Equal to ``np.median`` of each window (the mean of the two middle values for an even
    count), in O(n h) time and O(h) memory. ``v`` must hold no NaN.

    >>> centred_median(np.array([5.0, 1.0, 4.0, 2.0, 3.0]), 1).tolist()
    [3.0, 4.0, 2.0, 3.0, 2.5]
    """
    x = np.ascontiguousarray(v, dtype=np.float64)
    out = np.empty(len(x))
    if len(x):
        _centred_median(x, int(max(h, 0)), out)
    return out
