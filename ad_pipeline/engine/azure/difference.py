"""Non-stationary differencing of the SR and dynamic paths (reference §8).

The release tests stationarity with the ``arch`` package's defaults. Both tests are computed
here, without that package:

- ADF (constant, lag length by AIC, at most ``min(ceil(12 (n/100)^(1/4)), (n - 5) // 2)`` lags,
  MacKinnon p-values): statsmodels' ``adfuller`` with that lag cap, computed with one QR
  factorisation for all candidate lag lengths instead of one pseudo-inverse per length (the same
  numbers, ~100x faster on 8,640 points);
- KPSS (constant, Hobijn et al. bandwidth, Bartlett kernel): stationary when the statistic is at
  most ``arch``'s 5% critical value 0.4614 (statsmodels' table says 0.463); infeasible (so
  "stationary", as the release counts a failing test) when the bandwidth estimate has no positive
  variance.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from .util import FloatArray

_BLOCK_ROWS = 32_768
_GRAM_ROWS = 20_000  # longer regressions use the Gram matrix (QR costs too much)


def _design(x: FloatArray, xdiff: FloatArray, lag: int, a: int, b: int, const_first: bool) -> FloatArray:
    """Rows ``a:b`` of the ADF regression ``[level, lag 1..lag]`` (+ constant) and the response."""
    rows = b - a
    cols = [x[lag + a : lag + b]] + [xdiff[lag + a - j : lag + b - j] for j in range(1, lag + 1)]
    ones = np.ones(rows)
    cols = [ones, *cols] if const_first else [*cols, ones]
    return np.column_stack([*cols, xdiff[lag + a : lag + b]])


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """Small products run fastest on one BLAS thread (a busy thread pool is 10x slower)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn/scipy stacks
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _r_factor(x: FloatArray, xdiff: FloatArray, lag: int, const_first: bool) -> FloatArray:
    """An R factor of ``[design | y]``: the upper triangle whose nested blocks give every prefix
    model's residual sum of squares (exact QR for short series; for long ones the Cholesky factor
    of the Gram matrix of centred, unit-norm columns, accumulated block by block, which leaves
    the lag choice and the t statistic unchanged)."""
    nobs = len(xdiff) - lag
    if nobs <= _GRAM_ROWS:
        with _one_blas_thread():
            r: FloatArray = np.linalg.qr(_design(x, xdiff, lag, 0, nobs, const_first), mode="r")  # type: ignore[assignment]
        return r
    k = lag + 3
    sums = np.zeros(k)
    for a in range(0, nobs, _BLOCK_ROWS):
        sums += _design(x, xdiff, lag, a, min(nobs, a + _BLOCK_ROWS), True).sum(axis=0)
    means = sums / nobs
    means[0] = 0.0
    gram = np.zeros((k, k))
    with _one_blas_thread():
        for a in range(0, nobs, _BLOCK_ROWS):
            block = _design(x, xdiff, lag, a, min(nobs, a + _BLOCK_ROWS), True) - means
            gram += block.T @ block
    scale = np.sqrt(np.diag(gram))
    scale[scale == 0] = 1.0
    gram = gram / np.outer(scale, scale)
    gram[0, 1:] = gram[1:, 0] = 0.0  # the constant is orthogonal to the centred columns
    try:
        return np.linalg.cholesky(gram).T
    except np.linalg.LinAlgError:
        return np.zeros((0, k))


def adf_max_lag(n: int) -> int:
    """``arch``'s default lag cap of the ADF test (statsmodels caps at ``n // 2 - 2`` instead)."""
    return min((n - 5) // 2, int(np.ceil(12.0 * np.power(n / 100.0, 1 / 4.0))))


def adf_pvalue(x: FloatArray) -> float:
    """p-value of statsmodels' ``adfuller(x, maxlag=adf_max_lag(len(x)), autolag="AIC")``.

    All lag lengths share one factorisation: the residual sum of squares of each nested model is
    read off the R factor of ``[design | y]``.

    >>> rng = np.random.default_rng(1)
    >>> adf_pvalue(rng.normal(size=200)) < 0.05
    True
    """
    from statsmodels.tsa.adfvalues import mackinnonp

    x = np.asarray(x, dtype=np.float64)
    if x.max() == x.min():
        raise ValueError("Invalid input, x is constant")
    n = len(x)
    maxlag = adf_max_lag(n)
    if maxlag < 0:
        raise ValueError("sample size is too short")
    xdiff = np.diff(x)
    nobs = len(xdiff) - maxlag
    r = _r_factor(x, xdiff, maxlag, const_first=True)
    k_all = maxlag + 2
    diag = np.abs(np.diag(r)[:k_all])
    if r.shape[0] < k_all + 1 or diag.min() <= 1e-10 * max(diag.max(), 1e-300):
        return _adf_statsmodels(x)
    qty = r[:k_all, k_all]
    res_full = float(r[k_all, k_all] ** 2)
    tail = np.concatenate((np.cumsum((qty**2)[::-1])[::-1], [0.0]))  # tail[k] = sum_{j>=k} qty_j^2
    best = (np.inf, 0)
    for k in range(2, k_all + 1):  # k columns: const, level and k-2 lags
        ssr = res_full + float(tail[k])
        llf = -nobs / 2 * (np.log(2 * np.pi) + np.log(ssr / nobs) + 1)
        best = min(best, (-2 * llf + 2 * k, k))
    lag = best[1] - 2
    nobs = len(xdiff) - lag
    r = _r_factor(x, xdiff, lag, const_first=True)
    k = lag + 2
    if r.shape[0] < k + 1:
        return _adf_statsmodels(x)
    rk = r[:k, :k]
    beta = np.linalg.solve(rk, r[:k, k])
    sigma2 = float(r[k, k] ** 2) / (nobs - k)
    rinv = np.linalg.inv(rk)
    se1 = math.sqrt(sigma2 * float(np.sum(rinv[1] ** 2)))  # columns: constant, level, lags
    return float(mackinnonp(beta[1] / se1, regression="c", N=1))


def _adf_statsmodels(x: FloatArray) -> float:
    from statsmodels.tsa.stattools import adfuller

    with warnings.catch_warnings():  # after the import: statsmodels sets its own filters on import
        warnings.simplefilter("ignore")
        return float(adfuller(x, maxlag=adf_max_lag(len(x)), autolag="AIC")[1])


KPSS_CRITICAL_5 = 0.4614
"""5% critical value of the KPSS level-stationarity statistic (``arch``'s simulated table)."""


def kpss_statistic(y: FloatArray) -> float:
    """KPSS statistic of ``y`` around its mean, with ``arch``'s automatic bandwidth.

    Raises ``ValueError`` when the bandwidth cannot be estimated (no positive variance).

    >>> rng = np.random.default_rng(1)
    >>> kpss_statistic(rng.normal(size=300)) < KPSS_CRITICAL_5 < kpss_statistic(np.cumsum(rng.normal(size=300)))
    True
    """
    u = np.asarray(y, dtype=np.float64)
    n = len(u)
    u = u - u.mean()
    s0 = float(np.sum(u**2)) / n
    s1 = 0.0
    for i in range(1, int(np.power(n, 2.0 / 9.0)) + 1):
        prod = float(u[i:] @ u[: n - i]) / (n / 2)
        s0 += prod
        s1 += i * prod
    if s0 <= 0:
        raise ValueError("KPSS: the bandwidth estimate has no positive variance")
    s_hat = s1 / s0
    lags = min(n, int(1.1447 * np.power(s_hat * s_hat, 1.0 / 3.0) * np.power(n, 1.0 / 3.0)))
    lam = float(u @ u)
    for j in range(1, lags + 1):
        lam += 2 * (1 - j / (lags + 1)) * float(u[j:] @ u[: n - j])
    lam /= n
    return float(np.sum(np.cumsum(u) ** 2)) / n**2 / lam


def is_stationary(y: FloatArray) -> bool:
    """ADF p < 0.05 or KPSS p >= 0.05 (a test that cannot be computed counts as stationary)."""
    try:
        with warnings.catch_warnings():  # p-values beyond MacKinnon's table are expected here
            warnings.simplefilter("ignore")
            if adf_pvalue(y) < 0.05:
                return True
            return kpss_statistic(y) <= KPSS_CRITICAL_5
    except Exception:  # noqa: BLE001 - the release treats a failing test as stationary
        return True


def difference_order(x: FloatArray) -> tuple[int, FloatArray]:
    """``(delta, differenced series padded to n)``; delta 0 when nothing is to be done.

    Each step differences the padded series of the step before and pads the result at the front
    with ``delta + 1`` copies of its entry ``delta``, back to n points; the stationarity test
    runs on that padded series, as the release's.
    """
    cur = x
    for delta in range(3):
        if is_stationary(cur):
            return (delta, cur) if delta else (0, x)
        d = np.diff(cur)
        cur = np.concatenate((np.full(delta + 1, d[delta]), d[delta:]))
    return 0, x


def integrate(x: FloatArray, e_hat: FloatArray, delta: int) -> FloatArray:
    """The increments a rerun's expected values stand for (integrated once more when delta = 2)."""
    if delta == 1:
        return e_hat
    out = np.empty_like(e_hat)
    out[:2] = x[1] - x[0]
    out[2:] = out[1] + np.cumsum(e_hat[2:])
    return out


def remaining_ratio(n: int, ratio: float, n_flagged: int) -> float:
    """The unused outlier budget as a ratio (0 when none is left)."""
    k = max(math.floor(n * ratio), 1)
    r = k - n_flagged
    return r / n if r > 0 else 0.0
