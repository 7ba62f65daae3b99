"""The compiled kernels of the change-point segmentation (:mod:`ad_pipeline.engine.changepoint`).

A segment is a line with its own noise variance; a split's gain compares one segment with two.
The constants of the model (variance inflation, variance floor, noise prior) come as arguments,
so :mod:`ad_pipeline.engine.changepoint` keeps them in one place.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .result import BoolArray, FloatArray


def cumulative_sums(z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """``z`` and the cumulative sums a split's gain needs: z, z^2, index * z, squared differences."""
    idx = np.arange(len(z), dtype=np.float64)
    return (
        z,
        np.concatenate(([0.0], np.cumsum(z))),
        np.concatenate(([0.0], np.cumsum(z * z))),
        np.concatenate(([0.0], np.cumsum(idx * z))),
        np.concatenate(([0.0, 0.0], np.cumsum(np.diff(z) ** 2))),  # [t]: squared differences up to z[t-1]
    )


@njit(cache=True, nogil=True)
def _line_rss(c1: FloatArray, c2: FloatArray, cx: FloatArray, a: int, b: int) -> float:
    """Residual sum of squares of the least-squares line over ``[a, b)`` (``b - a >= 2``)."""
    m = b - a
    sy = c1[b] - c1[a]
    sxy = cx[b] - cx[a] - (a + b - 1) / 2.0 * sy
    sxx = max(m * (m * m - 1.0) / 12.0, 1e-300)
    return c2[b] - c2[a] - sy * sy / m - sxy * sxy / sxx


@njit(cache=True, nogil=True)
def gain_parts(
    z: FloatArray,
    c1: FloatArray,
    c2: FloatArray,
    cx: FloatArray,
    cd: FloatArray,
    a: int,
    s: int,
    b: int,
    kappa: float,
    kappa_var: float,
    var_floor: float,
    prior: float,
) -> tuple[float, float]:
    """The gain of splitting ``[a, b)`` at ``s`` (step 5): the lines' part and the noise variances' part."""
    r_left = _line_rss(c1, c2, cx, a, s)
    r_right = _line_rss(c1, c2, cx, s, b)
    m_l = s - a
    m_r = b - s
    v_l = max(r_left / max(m_l - 2, 1), var_floor)
    v_r = max(r_right / max(m_r - 2, 1), var_floor)
    v = (m_l * v_l + m_r * v_r) / (m_l + m_r)
    # Local noise variance of [a, b) from the first differences about each side's mean difference
    # (its slope; the differences of a side sum to its last value minus its first), which a misfit
    # of the lines barely moves, shrunk towards the series' (1) as if that were `prior` more
    # points. In a noisier stretch the lines' gain is measured in its own noise units.
    dev_l = cd[s] - cd[a + 1] - (z[s - 1] - z[a]) ** 2 / max(m_l - 1, 1)
    dev_r = cd[b] - cd[s + 1] - (z[b - 1] - z[s]) ** 2 / max(m_r - 1, 1)
    local = ((dev_l + dev_r) / 2.0 + prior) / (max(m_l + m_r - 4, 0) + prior)
    lines = (_line_rss(c1, c2, cx, a, b) - r_left - r_right) / (kappa * max(local, 1.0))
    noise = ((m_l + m_r) * np.log(v) - m_l * np.log(v_l) - m_r * np.log(v_r)) / kappa_var
    return lines, noise


@njit(cache=True, nogil=True)
def binary_segmentation(
    z: FloatArray,
    c1: FloatArray,
    c2: FloatArray,
    cx: FloatArray,
    cd: FloatArray,
    allowed: BoolArray,
    min_seg: int,
    cut: float,
    kappa: float,
    kappa_var: float,
    var_floor: float,
    prior: float,
) -> np.ndarray:
    """Sorted splits of binary segmentation: the best split of a segment is kept when its gain exceeds ``cut``."""
    n = len(z)
    cand = np.empty(n, dtype=np.int64)
    n_cand = 0
    stack = np.empty((n + 2, 2), dtype=np.int64)
    stack[0, 0], stack[0, 1] = 0, n
    top = 1
    while top > 0:
        top -= 1
        a, b = stack[top, 0], stack[top, 1]
        best, at = -np.inf, -1
        for s in range(a + min_seg, b - min_seg + 1):
            if allowed[s]:
                lines, noise = gain_parts(z, c1, c2, cx, cd, a, s, b, kappa, kappa_var, var_floor, prior)
                if lines + noise > best:
                    best, at = lines + noise, s
        if at >= 0 and best > cut:
            cand[n_cand] = at
            n_cand += 1
            stack[top, 0], stack[top, 1] = a, at
            stack[top + 1, 0], stack[top + 1, 1] = at, b
            top += 2
    return np.sort(cand[:n_cand])


@njit(cache=True, nogil=True)
def eliminate(
    z: FloatArray,
    c1: FloatArray,
    c2: FloatArray,
    cx: FloatArray,
    cd: FloatArray,
    at: np.ndarray,
    kappa: float,
    kappa_var: float,
    var_floor: float,
    prior: float,
) -> FloatArray:
    """Backward elimination (step 5): the level of each split, the running maximum of the least gains at removal."""
    k = len(at)
    n = len(z)
    level = np.zeros(k)
    alive = np.ones(k, dtype=np.bool_)
    running = -np.inf
    for _ in range(k):
        worst, worst_gain, prev = -1, np.inf, 0
        for i in range(k):
            if not alive[i]:
                continue
            nxt = n
            for j in range(i + 1, k):
                if alive[j]:
                    nxt = at[j]
                    break
            lines, noise = gain_parts(z, c1, c2, cx, cd, prev, at[i], nxt, kappa, kappa_var, var_floor, prior)
            if lines + noise < worst_gain:
                worst, worst_gain = i, lines + noise
            prev = at[i]
        running = max(running, worst_gain)
        level[worst] = running
        alive[worst] = False
    return level
