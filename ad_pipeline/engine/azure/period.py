"""Period detection (reference §5): simple GCV detector, spectrum/ACF detector, recursion."""

from __future__ import annotations

import numpy as np
from numba import njit

from ..kernels import running_median32, sorted_median32
from .util import FloatArray, despike, isclose0, normalise

CANDIDATES = {
    "daily": (7,),
    "hourly": (168, 24),
    "minutely": (10080, 1440, 2880),
    "weekly": (12, 4),
    "monthly": (12,),
    "secondly": (604800, 86400, 172800),
    "microsecond": (1000,),
}
_DIVIDED = ("hourly", "minutely", "secondly")
STANDARD = {"daily": 7, "hourly": 168, "minutely": 10080, "weekly": 12, "monthly": 12, "secondly": 604800}


def _per_interval(p: int, granularity: str, custom_interval: int) -> int:
    return p // custom_interval if granularity in _DIVIDED else p


@njit(cache=True)
def _gcv_kernel(v, p):  # type: ignore[no-untyped-def]
    # the release's arithmetic: values, phase sums and the total in float32, each term in float64
    n = len(v)
    c = np.zeros(p, dtype=np.int64)
    s = np.zeros(p, dtype=np.float32)
    q = np.zeros(p, dtype=np.float32)
    j = 0
    for i in range(n):
        x = np.float32(v[i])
        s[j] += x
        q[j] += x * x
        c[j] += 1
        j += 1
        if j == p:
            j = 0
    total = np.float32(0.0)
    for j in range(p):
        ratio = c[j] / (c[j] - 1.0)
        term = ratio * ratio * np.float64(q[j] - s[j] * s[j] / np.float32(c[j]))
        total = np.float32(np.float64(total) + term)
    return total / np.float32(n)


def gcv(v: FloatArray, p: int) -> float:
    """Generalised cross-validation error of the per-phase mean fit with period ``p``.

    ``(1/n) * sum_j (c_j/(c_j-1))^2 (q_j - s_j^2/c_j)`` over the phases ``j = i mod p`` (count,
    sum, sum of squares), in the release's float32 arithmetic; 0 when it is close to 0.
    Every phase needs at least 2 points (``len(v) >= 2 p``).

    >>> gcv(np.tile([0.0, 1.0], 10), 2)
    0.0
    """
    val = float(_gcv_kernel(np.ascontiguousarray(v, dtype=np.float64), int(p)))
    return 0.0 if isclose0(val) else val


@njit(cache=True, error_model="numpy")
def _bucket_kernel(v, p):  # type: ignore[no-untyped-def]
    """The release's per-phase spike removal, in place: its "MAD" is 1.4826 times the median of the
    signed float32 deviations (about 0, of either sign) + 1e-8, so values a few 1e-8 from the
    phase median on one side are set to it."""
    for j in range(p):
        sub = v[j::p].copy()
        med = np.float64(sorted_median32(np.sort(sub.astype(np.float32)), len(sub)))
        dev = np.sort((sub - med).astype(np.float32))
        mad = 1.4826 * np.float64(sorted_median32(dev, len(dev))) + 1e-8
        for k in range(len(sub)):
            if (sub[k] - med) / mad >= 3.0:
                v[k * p + j] = med
    return v


def _bands(p: int) -> int:
    return 0 if p <= 24 else (1 if p <= 168 else 2)


_FIRST = (0.35, 0.15, 0.1)
_SECOND = (0.35, 0.65, 0.7)


def _explains(v: FloatArray, p: int, threshold: float) -> bool:
    err = gcv(v, p)
    return (1.0 if err == 0.0 else 1 - err / float(v.var())) > threshold


def _passes(x: FloatArray, p: int) -> bool:
    if float(np.max(x)) == float(np.min(x)):
        return False  # constant: no season (the release gets there through a ~0 or NaN variance)
    nv = normalise(x)
    v = despike(nv)
    if isclose0(float(v.var())):
        return False
    if _explains(v, p, _FIRST[_bands(p)]):
        return True
    # retried on the normalised series less its running median, despiked, then the bucket step
    d = despike(nv - running_median32(nv, p))
    d = _bucket_kernel(np.array(d, dtype=np.float64), p)
    if isclose0(float(d.var())):
        return False
    return _explains(d, p, _SECOND[_bands(p)])


def simple_period(x: FloatArray, granularity: str, custom_interval: int) -> int:
    """The first granularity candidate that a seasonal fit explains well enough (0 if none)."""
    n = len(x)
    for p0 in CANDIDATES.get(granularity, ()):
        p = _per_interval(p0, granularity, custom_interval)
        if n <= 2 * p or p < 4:
            continue
        if _passes(x, p):
            std = STANDARD.get(granularity)
            if std is not None:
                std = _per_interval(std, granularity, custom_interval)
                if std > 0 and n > 2 * std and std % p == 0:
                    return std
            return p
    return 0


def _acf(v: FloatArray, nlags: int) -> tuple[FloatArray, FloatArray]:
    """Autocorrelation (statsmodels' estimator) and the half-width of its 90% Bartlett band."""
    n = len(v)
    d = v - v.mean()
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(d, size)
    ac = np.fft.irfft(f * np.conj(f), size)[: nlags + 1]
    acf = ac / ac[0]
    var = np.ones(nlags + 1) / n
    var[0] = 0
    if nlags >= 2:
        var[2:] *= 1 + 2 * np.cumsum(acf[1:-1] ** 2)
    half = 1.6448536269514722 * np.sqrt(var)
    return acf, half


def spectrum_period(x: FloatArray) -> int:
    """Autocorrelation search on the despiked, detrended series (0 when nothing is accepted)."""
    from .spline import guess_period, spline_trend

    n = len(x)
    if n < 12:
        return 0
    v = despike(normalise(x))
    v = v - spline_trend(v, 2 * guess_period(v) - 1)
    var = float(v.var())
    if isclose0(var):
        return 0
    nlags = int(min(n / 3, 5760))
    if nlags < 5:
        return 0
    acf, half = _acf(v, nlags)
    acf = acf.copy()
    cands = []
    for _ in range(nlags + 1):
        lag = int(np.argmax(acf))
        a = acf[lag]
        if a < 0.1 or a < half[lag]:
            break
        if 4 < lag < nlags:
            cands.append(lag)
        acf[lag] = 0
    if not cands:
        return 0
    errs = [gcv(v, p) for p in cands]
    p = cands[int(np.argmin(errs))]
    g = errs[int(np.argmin(errs))]
    if not (isclose0(g) or 1 - g / var >= 0.2):
        return 0
    if n / p + 1 <= 3:
        return 0
    return p


def spectrum_period_recursive(x: FloatArray) -> int:
    """Spectrum detector, refined by re-running it on the series subsampled by the period."""
    p = spectrum_period(x)
    if p == 0:
        return 0
    period = p
    a = x[::p]
    while True:
        q = spectrum_period(a)
        if q == 0:
            return period
        period *= q
        a = a[::q]


def detect_period(x: FloatArray, granularity: str, custom_interval: int) -> int:
    """Period of the (filled) series ``x``: the simple detector, else the spectrum detector.

    >>> t = np.arange(200)
    >>> detect_period(np.sin(2 * np.pi * t / 7) + 5, "daily", 1)
    7
    """
    p = simple_period(x, granularity, custom_interval)
    if p:
        return p
    return spectrum_period_recursive(x)
