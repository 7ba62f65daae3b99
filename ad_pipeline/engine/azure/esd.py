"""Generalized ESD, Z test and the merge of their ranked lists (reference §3).

The ESD runs in float32 on one tail at a time. The upper tail is the stable ascending order
reversed (among ties the highest index first); the lower tail is the stable ascending order.
For step ``k`` the test uses the median/MAD (and, as a fallback, mean/std) of the list with its
``k`` most extreme elements removed. On a sorted array the median is one lookup and the MAD is
the k-th smallest of two sorted sequences (binary search), so a step is O(log n), not O(n).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

from .util import FloatArray

IntArray = NDArray[np.int64]
ALPHA = 0.05
MAD_SCALE = 0.6744897501960817
"""``norm.ppf(3/4)``: statsmodels' ``robust.mad`` divides by it (the reference rounds it to 0.6745)."""

_LAMBDA = np.zeros(0)


def lambdas(r_max: int) -> FloatArray:
    """Critical values ``λ(r)`` indexed by the remaining list length ``r`` (``λ(r) = 0`` for r < 3).

    ``λ(r) = t_{1-α/r, r-2} (r-1) / sqrt((r-2+t²) r)``: the ESD value for step i of a list of
    n points depends only on ``r = n-i+1``.
    """
    global _LAMBDA
    if len(_LAMBDA) <= r_max:
        from scipy.special import stdtrit  # Student t quantile; scipy.stats.t.ppf without its 1 s import

        size = max(r_max + 1, 2 * len(_LAMBDA), 1024)
        r = np.arange(size, dtype=np.float64)
        lam = np.zeros(size)
        ok = r >= 3
        rr = r[ok]
        t = stdtrit(rr - 2, 1 - ALPHA / rr)
        lam[ok] = t * (rr - 1) / np.sqrt((rr - 2 + t * t) * rr)
        _LAMBDA = lam
    return _LAMBDA


@njit(cache=True)
def _median_sorted(a, lo, hi):  # type: ignore[no-untyped-def]
    m = hi - lo
    mid = lo + m // 2
    if m % 2 == 1:
        return a[mid]
    return np.float32((a[mid - 1] + a[mid]) / np.float32(2.0))


@njit(cache=True)
def _kth_dev(a, lo, p, hi, med, k):  # type: ignore[no-untyped-def]
    """k-th smallest (0-based) of |a[lo:hi] - med|; a ascending, a[lo:p] < med <= a[p:hi]."""
    na = p - lo
    nb = hi - p
    low = max(0, k + 1 - nb)
    high = min(k + 1, na)
    inf = np.float32(np.inf)
    while low <= high:
        i = (low + high) // 2
        j = k + 1 - i
        a_im1 = np.float32(med - a[p - i]) if i > 0 else -inf
        a_i = np.float32(med - a[p - 1 - i]) if i < na else inf
        b_jm1 = np.float32(a[p + j - 1] - med) if j > 0 else -inf
        b_j = np.float32(a[p + j] - med) if j < nb else inf
        if a_im1 > b_j:
            high = i - 1
        elif b_jm1 > a_i:
            low = i + 1
        else:
            return a_im1 if a_im1 > b_jm1 else b_jm1
    return np.float32(np.nan)


@njit(cache=True)
def _mad_sorted(a):  # type: ignore[no-untyped-def]
    """Median absolute deviation (float32, as numpy's median) of the ascending array ``a``."""
    m = len(a)
    med = _median_sorted(a, 0, m)
    p = np.searchsorted(a, med)
    if m % 2 == 1:
        return _kth_dev(a, 0, p, m, med, m // 2)
    return np.float32(
        (_kth_dev(a, 0, p, m, med, m // 2 - 1) + _kth_dev(a, 0, p, m, med, m // 2)) / np.float32(2.0)
    )


@njit(cache=True)
def esd_scan(a, c1, c2, lo, hi, upper, lam, n_max, start, stop_first):  # type: ignore[no-untyped-def]
    """Run the ESD over the list ``a[lo:hi]`` (reversed when ``upper``); return how many list
    elements are anomalies. ``c1``/``c2``: prefix sums of ``a`` and ``a**2`` (float64).

    Entire mode (``stop_first=False``): ``k* + 1`` for the largest flagged step ``k*``.
    Last mode: the first flagged step ``k >= start`` plus one.
    """
    m = hi - lo
    best = 0
    eps = 1e-8
    for k in range(start, n_max):
        r = m - k
        if r < 3:
            break
        if upper:
            slo = lo
            shi = hi - k
            v = a[hi - 1 - k]
        else:
            slo = lo + k
            shi = hi
            v = a[lo + k]
        med = _median_sorted(a, slo, shi)
        p = slo + np.searchsorted(a[slo:shi], med)
        if r % 2 == 1:
            mad = _kth_dev(a, slo, p, shi, med, r // 2)
        else:
            mad = np.float32(
                (_kth_dev(a, slo, p, shi, med, r // 2 - 1) + _kth_dev(a, slo, p, shi, med, r // 2))
                / np.float32(2.0)
            )
        sigma = mad / 0.6744898
        if sigma < eps:
            sigma = eps
        mean = (c1[shi] - c1[slo]) / r
        var = (c2[shi] - c2[slo]) / r - mean * mean
        std = math.sqrt(var) if var > 0 else 0.0
        if std < eps:
            std = eps
        if upper:
            s_rob = (v - med) / sigma
            s_cls = (v - mean) / std
        else:
            s_rob = (med - v) / sigma
            s_cls = (mean - v) / std
        if s_rob > lam[r] or s_cls > lam[r]:
            best = k + 1
            if stop_first:
                return best
    return best


def direction_orders(z: np.ndarray, last: bool = False) -> tuple[IntArray, IntArray]:
    """Index orders of the upper tail (descending) and the lower tail (ascending).

    Stable ascending sort; upper = its reverse. In last mode the last point ranks first among
    values equal to it in both lists.
    """
    upper, lower = _orders(np.ascontiguousarray(z), last)
    return upper, lower


@njit(cache=True)
def _orders(z, last):  # type: ignore[no-untyped-def]
    n = len(z)
    asc = np.argsort(z, kind="mergesort")  # stable
    upper = asc[::-1].copy()
    lower = asc.copy()
    if last:  # the last point (last of its tie group in ``asc``) moves to the group's front
        v = z[n - 1]
        hi = 0
        for i in range(n):
            if asc[i] == n - 1:
                hi = i
                break
        lo = hi
        while lo > 0 and z[asc[lo - 1]] == v:
            lo -= 1
        for i in range(hi, lo, -1):
            lower[i] = asc[i - 1]
        lower[lo] = n - 1
    return upper, lower


@njit(cache=True)
def _esd_lists(z32, k_max, last, lam):  # type: ignore[no-untyped-def]
    n = len(z32)
    upper, lower = _orders(z32, last)
    a = np.empty(n, dtype=np.float32)
    c1 = np.zeros(n + 1)
    c2 = np.zeros(n + 1)
    for i in range(n):
        a[i] = z32[lower[i]]
        v = np.float64(a[i])
        c1[i + 1] = c1[i] + v
        c2[i + 1] = c2[i] + v * v
    lo_u, hi_u, lo_l, hi_l = 0, n, 0, n
    mad_all = _mad_sorted(a)
    if abs(mad_all / MAD_SCALE) <= 1e-8:  # majority value: cut each list after its last copy of it
        maj = np.float64(a[(n - 1) // 2])
        a0 = np.float64(a[0])
        a1 = np.float64(a[n - 1])
        if not (abs(maj - a0) <= 1e-8 + 1e-5 * abs(a0) or abs(maj - a1) <= 1e-8 + 1e-5 * abs(a1)):
            first = -1
            last_near = -1
            for i in range(n):
                if abs(np.float64(a[i]) - maj) <= 1e-8:
                    if first < 0:
                        first = i
                    last_near = i
            lo_u = first
            hi_l = last_near + 1
    results = []
    for d in range(2):
        is_up = d == 0
        lo = lo_u if is_up else lo_l
        hi = hi_u if is_up else hi_l
        m = hi - lo
        lst = upper[:m] if is_up else lower[lo:hi]  # the upper list is ``a[lo:hi]`` reversed
        start = 0
        if last:
            start = -1
            for i in range(m):
                if lst[i] == n - 1:
                    start = i
                    break
            if start < 0:
                results.append(lst[:0].copy())
                continue
        cnt = esd_scan(a, c1, c2, lo, hi, is_up, lam, min(k_max, m), start, last)
        results.append(lst[:cnt].copy())
    return results[0], results[1]


def esd(z: FloatArray, k_max: int, last: bool = False) -> tuple[IntArray, IntArray]:
    """Generalized ESD on the series ``z``: the ranked anomaly lists (upper, lower)."""
    n = len(z)
    if n < 3 or float(np.max(z)) == float(np.min(z)):  # every statistic is 0: nothing to flag
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    up, lo = _esd_lists(z.astype(np.float32), int(k_max), bool(last), lambdas(n + 1))
    return up, lo


@njit(cache=True)
def _z_lists(z, k_max, last, center, scale):  # type: ignore[no-untyped-def]
    upper, lower = _orders(z, last)
    results = []
    for order in (upper, lower):
        head = order[:k_max]
        keep = np.abs(z[head] - center) / scale > 3
        results.append(head[keep])
    return results[0], results[1]


def z_test(z: FloatArray, k_max: int, last: bool = False) -> tuple[IntArray, IntArray]:
    """Z test ``|v - median| / (MAD / 0.67449) > 3`` among the first ``k_max`` of each tail;
    with a MAD of 0, the mean and population std instead (nothing when that is 0 too).

    The statistics are numpy's over the sorted values, as the release computes them: at a z of
    exactly 3 their rounding decides.
    """
    zs = np.sort(z)
    center = float(np.median(zs))
    scale = float(np.median(np.abs(zs - center))) / MAD_SCALE
    empty = np.zeros(0, dtype=np.int64)
    if scale == 0:
        center, scale = float(np.mean(zs)), float(np.std(zs))
        if scale == 0:
            return empty, empty
    up, lo = _z_lists(np.ascontiguousarray(z, dtype=np.float64), int(k_max), bool(last), center, scale)
    return up, lo


def merge(lists: list[IntArray], n: int, k_max: int) -> IntArray:
    """Merge the ranked lists of one direction: first-seen key ``k + i*n``, later hits add ``k``."""
    key = np.full(n, -1, dtype=np.int64)
    order_parts = []
    for i, lst in enumerate(lists):
        if len(lst) == 0:
            continue
        rank = np.arange(len(lst), dtype=np.int64)
        seen = key[lst] >= 0
        key[lst[seen]] += rank[seen]
        new = lst[~seen]
        key[new] = rank[~seen] + i * n
        order_parts.append(new)
    if not order_parts:
        return np.zeros(0, dtype=np.int64)
    order = np.concatenate(order_parts)
    return order[np.argsort(key[order], kind="stable")[:k_max]]


def flags_from(detectors: list[tuple[IntArray, IntArray]], n: int, k_max: int) -> NDArray[np.bool_]:
    """Union of the merged upper and lower lists as a boolean mask."""
    flags = np.zeros(n, dtype=bool)
    for d in (0, 1):
        flags[merge([det[d] for det in detectors], n, k_max)] = True
    return flags


def max_outliers(n: int, ratio: float) -> int:
    """``min(max(ceil(n*ratio), 1), n//2 - 1)``."""
    return min(max(math.ceil(n * ratio), 1), n // 2 - 1)
