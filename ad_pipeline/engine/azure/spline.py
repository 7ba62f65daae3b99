"""Spline trend and the guessed period of the dynamic-threshold path (reference §2)."""

from __future__ import annotations

import numpy as np
from numba import njit

from .util import FloatArray


@njit(cache=True)
def _theil_sen(y):  # type: ignore[no-untyped-def]
    w = len(y)
    slopes = np.empty(w * (w - 1) // 2)
    k = 0
    for i in range(w - 1):
        for j in range(i + 1, w):
            slopes[k] = (y[j] - y[i]) / (j - i)
            k += 1
    return np.median(slopes)


def theil_sen_slope(y: FloatArray) -> float:
    """Median of the pairwise slopes of ``y`` against 0..len(y)-1.

    >>> theil_sen_slope(np.array([0.0, 2.0, 4.0, 6.0, 100.0]))  # one outlier barely moves it
    2.0
    """
    if len(y) < 2:
        return 0.0
    return float(_theil_sen(np.ascontiguousarray(y, dtype=np.float64)))


def linear_ends(f: FloatArray, w: int) -> FloatArray:
    """Replace the first and last ``w//2`` points by lines with Theil-Sen slopes of the ends."""
    n = len(f)
    h = w // 2
    if h <= 0 or w > n or n - 1 - h < h:
        return f
    f = f.copy()
    bl = theil_sen_slope(f[:w])
    br = theil_sen_slope(f[n - w :])
    f[:h] = f[h] + (np.arange(h) - h) * bl
    f[n - h :] = f[n - 1 - h] + np.arange(1, h + 1) * br
    return f


def spline_trend(y: FloatArray, w: int) -> FloatArray:
    """Cubic least-squares spline trend with linear ends (window ``w``).

    >>> t = spline_trend(np.arange(30.0), 10)
    >>> bool(np.allclose(t, np.arange(30.0)))
    True
    """
    from scipy.interpolate import LSQUnivariateSpline

    n = len(y)
    if n < 6:
        return np.full(n, float(np.mean(y)))
    w = max(int(w), 1)
    m = max(2, n // (2 * w) + 2)
    knots = np.arange(1, m) * (n - 1) / (m + 1)
    xs = np.arange(n, dtype=np.float64)
    f = LSQUnivariateSpline(xs, y, knots, k=3)(xs)
    return linear_ends(f, w)


def _median_filter(y: FloatArray, m: int) -> FloatArray:
    """Centred median of window ``2m-1``; the edges keep the raw values."""
    from scipy.ndimage import median_filter

    n = len(y)
    size = 2 * m - 1
    out = y.copy()
    if size <= n and m >= 1:
        med = median_filter(y, size=size, mode="nearest")
        out[m - 1 : n - m + 1] = med[m - 1 : n - m + 1]
    return out


def guess_period(y: FloatArray) -> int:
    """The power-weighted dominant period of the Welch periodogram of the de-medianed series."""
    from scipy.signal import welch

    n = len(y)
    m = min(n // 3, 512)
    if m < 1:
        return 1
    base = linear_ends(_median_filter(y, m), 2 * m - 1)
    nperseg = min(2 * m, n // 2)
    if nperseg < 1:
        return m
    f, pxx = welch(y - base, nperseg=nperseg, window="hann", scaling="spectrum")
    ok = f > 0
    f, pxx = f[ok], pxx[ok]
    if len(f) == 0:
        return m
    periods = np.round(1 / f).astype(np.int64)
    uniq, inv = np.unique(periods, return_inverse=True)
    power = np.zeros(len(uniq))
    np.maximum.at(power, inv, pxx)
    power[uniq == nperseg] = 0
    keep = (uniq >= 4) & (uniq <= m)
    uniq, power = uniq[keep], power[keep]
    if len(power) == 0 or power.max() <= 0:
        return m
    top = power >= 0.9 * power.max()
    return int(round(float(np.sum(uniq[top] * power[top]) / np.sum(power[top]))))
