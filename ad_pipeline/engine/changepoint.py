"""Change-point detection: where the level or the slope of a series shifts.

The algorithm (our own; the retired service did not document its change-point model):

1. **Fill.** Missing grid points (NaN) are filled linearly (constant at the ends). They are
   never reported as change points and get confidence 0.
2. **Seasonality.** ``period=None`` detects the period (the Azure model's period detection,
   :func:`ad_pipeline.engine.azure.period.detect_period`; when it finds none, a check of the
   granularity's standard periods on the series detrended by a moving average); ``0`` = none.
   With a period ``p > 1`` (and at least ``2p`` points) a seasonal profile is removed: the
   series minus its centred moving average, folded per phase with a median. The profile uses
   the divisor ``q`` of ``p`` with the least relative GCV error (a daily cycle in hourly data
   is reported as period 168 but profiled with 24 phases, from seven times more cycles).
3. **Noise scale.** ``sigma`` = 1.4826 * MAD of the first differences / sqrt(2), a robust
   estimate of the point noise that level shifts and trends barely move. The series is put in
   sigma units; isolated spikes (more than 5 sigma from a 5-point moving median) are replaced
   by that median, so a single outlier does not look like a shift.
4. **Two-window test.** For every candidate position ``t`` (the first point of the new regime)
   a straight line is fitted to the ``W = stable_trend_window`` points on its left and another
   to the ``W`` points on its right (fewer near the ends, at least 3 each side; closer to the
   ends nothing is reported). Both lines are evaluated at ``t - 0.5``; the differences in level
   and slope, with their covariance under white noise, give a chi-square statistic ``T``
   (2 degrees of freedom) and ``z = sqrt(T)``. Window sums come from cumulative sums: a few
   numpy passes per series, whatever ``W``.
5. **Candidates** are the local maxima of ``z`` within ``W`` points on each side. The moving
   statistic also rises where a change sits inside one of the windows, so each candidate is
   moved to the least-squares split of the fixed range ``candidate +- W``: two free lines (a
   step) or two lines that meet (a kink), the kink unless the step fits better by more than a
   chi-square(1) of 10.83. Of moved candidates less than ``W`` apart only the strongest stays.
   A second pass refits each one on the whole segments up to its strong neighbours (``z > 4``,
   at most ``3W`` points each side), which locates gradual slope changes more precisely.
6. **Confidence** of a candidate = ``1 / (1 + exp(-(z - 5) / 0.5))``, a smooth map of its ``z``
   to (0, 1) that is 0.5 at ``z = 5`` (a 4-sigma level shift with the default window scores
   above 0.99), reported at its (moved) position; every other point scores 0. **A point is a
   change point exactly when its confidence exceeds** ``threshold``, so raising the threshold
   only removes change points.

Defaults: ``stable_trend_window`` = :data:`DEFAULT_STABLE_TREND_WINDOW` (30) points, reduced to
``max(3, n // 4)`` for a series of fewer than 120 grid points; ``threshold`` =
:data:`DEFAULT_THRESHOLD` (0.5, i.e. ``z > 5``). A longer window finds smaller and more gradual
changes but cannot separate changes closer than about ``W`` points; a higher threshold reports
fewer points. On synthetic series with changes at least 60 points apart (4-8 sigma level
shifts, slope changes of 0.2-0.4 sigma per point, half of them with a daily cycle),
``benchmarks/changepoints.py`` measures F1 0.996 (precision 0.999, recall 0.993) within +-5
points.

>>> import numpy as np
>>> from ad_pipeline.engine.model import GridSeries
>>> from ad_pipeline.engine.params import ChangePointParams
>>> x = np.r_[np.zeros(100), np.full(100, 8.0)] + np.random.default_rng(1).normal(size=200)
>>> period, is_cp, conf = change_points([GridSeries(x, "none", 1, ChangePointParams(period=0))])[0]
>>> np.flatnonzero(is_cp).tolist(), bool(conf[100] > 0.99)
([100], True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter

from .arrays import interp_nan
from .model import GridSeries
from .params import ChangePointParams
from .result import BoolArray, FloatArray

DEFAULT_STABLE_TREND_WINDOW = 30
DEFAULT_THRESHOLD = 0.5
MIN_SIDE = 3  # points needed on each side of a candidate
Z_MID = 5.0  # z at which the confidence is 0.5
Z_SCALE = 0.5  # steepness of the confidence map
SPIKE_Z = 5.0
Z_NEIGHBOUR = 4.0  # change points that bound the segments of the second refinement pass
KINK_CHI2 = 10.83  # chi-square(1) at p = 0.001: a level gap that makes a kink a step

# Standard periods per granularity (per custom_interval unit), tried by the local fallback.
_FALLBACK_PERIODS: dict[str, tuple[int, ...]] = {
    "daily": (7,),
    "hourly": (24, 168),
    "minutely": (1440,),
    "weekly": (4, 12),
    "monthly": (12,),
}


def change_points(batch: Sequence[GridSeries]) -> list[tuple[int, BoolArray, FloatArray]]:
    """One ``(period, is_change_point, confidence_scores)`` per series, aligned with its grid.

    ``gs.params`` is a :class:`~ad_pipeline.engine.params.ChangePointParams`; see the module
    docstring for the algorithm and the defaults.

    Examples
    --------
    >>> import numpy as np
    >>> from ad_pipeline.engine.model import GridSeries
    >>> from ad_pipeline.engine.params import ChangePointParams
    >>> x = np.r_[np.zeros(60), np.arange(1, 61) * 1.0] + np.random.default_rng(2).normal(size=120)
    >>> out = change_points([GridSeries(x, "none", 1, ChangePointParams(period=0))])
    >>> np.flatnonzero(out[0][1]).tolist()
    [60]
    """
    return [_one(gs) for gs in batch]


def _one(gs: GridSeries) -> tuple[int, BoolArray, FloatArray]:
    p = gs.params
    assert isinstance(p, ChangePointParams)
    x = np.asarray(gs.values, dtype=np.float64)
    n = len(x)
    missing = np.isnan(x)
    y = interp_nan(x)
    period = p.period if p.period is not None else detect_period(y, gs.granularity, gs.custom_interval)
    if period > 1 and n >= 2 * period:
        y = y - _seasonal(y, _profile_period(y, period))
    window = p.stable_trend_window if p.stable_trend_window is not None else default_window(n)
    threshold = p.threshold if p.threshold is not None else DEFAULT_THRESHOLD
    z = standardise(y)
    if z is None:
        return period, np.zeros(n, dtype=bool), np.zeros(n)
    stat = _two_window_z(z, window)
    stat[missing] = 0.0
    cand = np.flatnonzero(_peaks(stat, window))
    at = _refine(z, cand, np.maximum(cand - window, 0), np.minimum(cand + window + 1, n), window, missing)
    score = _confidence(stat[cand])
    keep = _merge_close(at, score, window - 1)
    at, score = _refine_between(z, at[keep], score[keep], window, missing)
    keep = _merge_close(at, score, window - 1)
    conf = np.zeros(n)
    conf[at[keep]] = score[keep]
    return period, conf > threshold, conf


def _refine_between(
    z: FloatArray, at: np.ndarray, score: FloatArray, window: int, missing: BoolArray
) -> tuple[np.ndarray, FloatArray]:
    """Second pass: refit each change point on the segments up to its strong neighbours (at most 3W).

    Longer segments locate a gradual (slope) change more precisely than ``+- W`` points. Strong
    neighbours are those with ``z > Z_NEIGHBOUR``, whatever the user's threshold, so a threshold
    only ever removes change points.
    """
    if len(at) == 0:
        return at, score
    order = np.argsort(at, kind="stable")
    at, score = at[order], score[order]
    n = len(z)
    strong = at[score > _confidence(np.array([Z_NEIGHBOUR]))[0]]
    i = np.searchsorted(strong, at, side="left")  # strong[i - 1] < at <= strong[i]
    prev = np.where(i > 0, strong[np.maximum(i - 1, 0)], 0) if len(strong) else np.zeros_like(at)
    j = np.searchsorted(strong, at, side="right")  # strong[j] > at
    nxt = np.where(j < len(strong), strong[np.minimum(j, len(strong) - 1)], n) if len(strong) else np.full_like(at, n)
    lo = np.maximum(np.maximum(at - 3 * window, 0), prev)
    hi = np.minimum(np.minimum(at + 3 * window + 1, n), nxt)
    return _refine(z, at, lo, hi, max(1, window // 2), missing), score


def default_window(n: int) -> int:
    """The default ``stable_trend_window`` for a series of ``n`` grid points.

    >>> default_window(1000), default_window(12)
    (30, 3)
    """
    return int(max(MIN_SIDE, min(DEFAULT_STABLE_TREND_WINDOW, n // 4)))


def detect_period(y: FloatArray, granularity: str, custom_interval: int) -> int:
    """The period of a filled series: the Azure model's detection, then the granularity's standard cycles.

    The Azure detection (:func:`ad_pipeline.engine.azure.period.detect_period`) misses cycles
    on series whose level or trend changes, which is exactly what this module looks at; when it
    finds none, the granularity's standard periods are checked on the series detrended by a
    moving average (:func:`_fallback_period`).
    """
    from .azure.period import detect_period as azure_detect_period

    period = int(azure_detect_period(y, granularity, custom_interval))
    return period if period > 0 else _fallback_period(y, granularity, custom_interval)


def _fallback_period(y: FloatArray, granularity: str, custom_interval: int) -> int:
    """The first standard period of the granularity whose phase means explain over 35% of the variance.

    Each candidate ``p`` (at least 4, with 3 periods in the series) is judged on the series minus
    its centred moving average over ``p`` points, by generalised cross-validation (the 0.35
    threshold is the one the Azure detection uses for short periods).
    """
    n = len(y)
    for base in _FALLBACK_PERIODS.get(granularity, ()):
        if base % custom_interval:
            continue
        p = base // custom_interval
        if p >= 4 and n >= 3 * p and 1.0 - _relative_gcv(y, p) > 0.35:
            return p
    return 0


def _profile_period(y: FloatArray, period: int) -> int:
    """The divisor of ``period`` whose phase profile predicts best (least relative GCV; ties: the shortest).

    The Azure period detection reports the granularity's standard period when a shorter cycle
    divides it (a daily cycle in hourly data gets 168); a profile of 24 phases is estimated from
    seven times more cycles than one of 168, and its moving average follows changes of the
    trend seven times more closely, so it is used whenever it fits as well.
    """
    best, best_score = period, np.inf
    for q in [q for q in range(2, period // 2 + 1) if period % q == 0] + [period]:
        score = _relative_gcv(y, q)
        if score < best_score * (1.0 - 1e-9):
            best, best_score = q, score
    return best


def _relative_gcv(y: FloatArray, q: int) -> float:
    """GCV error of per-phase means with period ``q`` over the variance, on the series detrended over ``q``."""
    d = _detrended(y, q)
    d = d[np.isfinite(d)]
    var = float(d.var()) if len(d) else 0.0
    if len(d) < 2 * q or not var > 0:
        return np.inf
    return _gcv(d, q) / var


def _gcv(d: FloatArray, q: int) -> float:
    """Generalised cross-validation error of per-phase means with period ``q``."""
    phase = np.arange(len(d)) % q
    c = np.bincount(phase, minlength=q).astype(np.float64)
    s1 = np.bincount(phase, weights=d, minlength=q)
    s2 = np.bincount(phase, weights=d * d, minlength=q)
    if (c < 2).any():
        return np.inf
    return float(np.sum((c / (c - 1)) ** 2 * (s2 - s1 * s1 / c)) / len(d))


def _detrended(y: FloatArray, period: int) -> FloatArray:
    """The series minus its centred moving average over one period (2 x p for an even p); NaN at the ends."""
    n = len(y)
    h = period // 2
    mu = y.mean()
    c = np.concatenate(([0.0], np.cumsum(y - mu)))
    centre = np.arange(h, n - h)
    if period % 2:
        ma = (c[centre + h + 1] - c[centre - h]) / period
    else:  # weights 1/2p at both ends, 1/p inside
        inner = c[centre + h] - c[centre - h + 1]
        ma = (inner + 0.5 * ((c[centre + h + 1] - c[centre + h]) + (c[centre - h + 1] - c[centre - h]))) / period
    d = np.full(n, np.nan)
    d[centre] = y[centre] - mu - ma
    return d


def _seasonal(y: FloatArray, period: int) -> FloatArray:
    """Per-phase median of the series minus its centred moving average, centred on 0.

    The centred moving average over one period passes a straight trend unchanged and cancels
    the seasonal profile; a change only disturbs about one period of it, which the per-phase
    median ignores. The first and last half periods are not used.
    """
    n = len(y)
    d = _detrended(y, period)
    rows = -(-n // period)
    padded = np.full(rows * period, np.nan)
    padded[:n] = d
    # n >= 2 * period: every phase holds at least one detrended value
    prof = np.nanmedian(padded.reshape(rows, period), axis=0)
    prof = np.where(np.isfinite(prof), prof, 0.0)
    prof -= prof.mean()
    return prof[np.arange(n) % period]


def noise_scale(y: FloatArray) -> float:
    """Robust point-noise scale from the first differences (0 for a constant or linear series)."""
    d = np.diff(y)
    if len(d) == 0:
        return 0.0
    med = np.median(d)
    dev = np.abs(d - med)
    s = 1.4826 * float(np.median(dev)) / np.sqrt(2.0)
    if s == 0.0:  # mostly exact repeats (steps without noise): use the mean deviation
        s = 1.2533 * float(dev.mean()) / np.sqrt(2.0)
    spread = float(np.max(np.abs(y - np.median(y))))
    return max(s, 1e-10 * spread)


def _confidence(stat: FloatArray) -> FloatArray:
    with np.errstate(over="ignore"):
        conf = 1.0 / (1.0 + np.exp(-(stat - Z_MID) / Z_SCALE))
    return np.where(stat > 0, conf, 0.0)


def statistic(y: FloatArray, window: int) -> FloatArray:
    """Standardised change statistic ``z`` (>= 0) per point; 0 where it cannot be tested."""
    z = standardise(y)
    return np.zeros(len(y)) if z is None else _two_window_z(z, window)


def standardise(y: FloatArray) -> FloatArray | None:
    """The series in noise units, despiked, without its median slope; None when it has no noise."""
    n = len(y)
    sigma = noise_scale(y)
    if n < 2 * MIN_SIDE or sigma == 0.0 or not np.isfinite(sigma):
        return None
    z = (y - np.median(y)) / sigma
    # despike: isolated outliers away from a 5-point moving median
    if n >= 5:
        m5 = median_filter(z, size=5, mode="nearest")
        spikes = np.abs(z - m5) > SPIKE_Z
        z = np.where(spikes, m5, z)
    # remove the global median slope so the cumulative sums stay small
    idx = np.arange(n, dtype=np.float64)
    z = z - np.median(np.diff(z)) * idx
    z -= np.median(z)
    return z


def _two_window_z(z: FloatArray, window: int) -> FloatArray:
    """sqrt of the 2-dof chi-square statistic of (level, slope) differences; 0 where untested."""
    n = len(z)
    out = np.zeros(n)
    idx = np.arange(n, dtype=np.float64)
    cy = np.concatenate(([0.0], np.cumsum(z)))
    ciy = np.concatenate(([0.0], np.cumsum(idx * z)))
    t = np.arange(MIN_SIDE, n - MIN_SIDE + 1)
    if len(t) == 0:
        return out
    a = np.maximum(t - window, 0)
    b = np.minimum(t + window, n)
    lev_l, slope_l, c_l = _fit(cy, ciy, a, t, t - 0.5)
    lev_r, slope_r, c_r = _fit(cy, ciy, t, b, t - 0.5)
    d0 = lev_r - lev_l
    d1 = slope_r - slope_l
    va = c_l[0] + c_r[0]
    vb = c_l[1] + c_r[1]
    vc = c_l[2] + c_r[2]
    det = va * vc - vb * vb
    stat = (vc * d0 * d0 - 2.0 * vb * d0 * d1 + va * d1 * d1) / det
    out[t] = np.sqrt(np.maximum(stat, 0.0))
    out[~np.isfinite(out)] = 0.0
    return out


def _fit(
    cy: FloatArray, ciy: FloatArray, lo: np.ndarray, hi: np.ndarray, at: np.ndarray
) -> tuple[FloatArray, FloatArray, tuple[FloatArray, FloatArray, FloatArray]]:
    """Least-squares lines over ``[lo, hi)`` (unit noise): level at ``at``, slope, and their covariance."""
    m = (hi - lo).astype(np.float64)
    xbar = (lo + hi - 1) / 2.0
    sy = cy[hi] - cy[lo]
    sxy = ciy[hi] - ciy[lo] - xbar * sy
    sxx = m * (m * m - 1.0) / 12.0
    slope = sxy / sxx
    d = at - xbar
    level = sy / m + slope * d
    return level, slope, (1.0 / m + d * d / sxx, d / sxx, 1.0 / sxx)


def _peaks(stat: FloatArray, window: int) -> BoolArray:
    """Local maxima within ``window`` points each side; the earliest point of a plateau."""
    n = len(stat)
    if n == 0:
        return np.zeros(0, dtype=bool)
    centred = maximum_filter1d(stat, size=2 * window + 1, mode="constant", cval=0.0)
    # max over the `window` points strictly before t
    padded = np.concatenate((np.zeros(window), stat))
    before = maximum_filter1d(padded, size=window, mode="constant", cval=0.0, origin=-(window // 2))[:n]
    return (stat > 0) & (stat >= centred) & (stat > before)


def _refine(
    z: FloatArray, cand: np.ndarray, lo: np.ndarray, hi: np.ndarray, reach: int, missing: BoolArray
) -> np.ndarray:
    """Move each candidate to the best split ``s`` (within ``reach``) of its range ``[lo, hi)``.

    The moving two-window statistic also rises where a change sits inside one of the windows
    (about ``window / 2`` away); within a fixed range the least-squares split is sharp. Two
    models are fitted at every split ``s``: two free lines (a step, RSS ``r_jump``) and two lines
    meeting at ``s - 0.5`` (a kink: ``r_jump`` plus the squared, standardised level gap). The kink
    location is kept unless the step model fits better by more than ``KINK_CHI2`` (noise units).
    """
    n = len(z)
    if len(cand) == 0:
        return cand
    off = np.arange(-reach, reach + 1)
    lo = lo[:, None]
    hi = hi[:, None]
    s = cand[:, None] + off[None, :]
    ok = (s - lo >= MIN_SIDE) & (hi - s >= MIN_SIDE)
    s = np.clip(s, 0, n - 1)
    lo, hi = np.broadcast_to(lo, s.shape), np.broadcast_to(hi, s.shape)
    ok &= ~missing[s]
    idx = np.arange(n, dtype=np.float64)
    c1 = np.concatenate(([0.0], np.cumsum(z)))
    c2 = np.concatenate(([0.0], np.cumsum(z * z)))
    cx = np.concatenate(([0.0], np.cumsum(idx * z)))
    with np.errstate(divide="ignore", invalid="ignore"):
        lev_l, _, var_l = _fit(c1, cx, lo, s, s - 0.5)
        lev_r, _, var_r = _fit(c1, cx, s, hi, s - 0.5)
        r_jump = _rss(c1, c2, cx, lo, s) + _rss(c1, c2, cx, s, hi)
        r_kink = r_jump + (lev_r - lev_l) ** 2 / (var_l[0] + var_r[0])
    r_jump = np.where(ok, r_jump, np.inf)
    r_kink = np.where(ok & np.isfinite(r_kink), r_kink, np.inf)
    rows = np.arange(len(cand))
    bj = np.argmin(r_jump, axis=1)
    bk = np.argmin(r_kink, axis=1)
    use_kink = r_kink[rows, bk] - r_jump[rows, bj] < KINK_CHI2
    best = np.where(use_kink, bk, bj)
    found = np.isfinite(r_jump[rows, best])
    return np.where(found, s[rows, best], cand)


def _merge_close(at: np.ndarray, score: FloatArray, gap: int) -> np.ndarray:
    """Indices into ``at`` to keep: of positions at most ``gap`` apart (chained), the highest score."""
    if len(at) < 2:
        return np.arange(len(at))
    order = np.argsort(at, kind="stable")
    cluster = np.concatenate(([0], np.cumsum(np.diff(at[order]) > gap)))
    # within each cluster the highest score wins (ties: the earliest)
    rank = np.lexsort((np.arange(len(at)), -score[order], cluster))
    first = np.concatenate(([True], np.diff(cluster[rank]) != 0))
    return order[rank[first]]


def _rss(c1: FloatArray, c2: FloatArray, cx: FloatArray, lo: np.ndarray, hi: np.ndarray) -> FloatArray:
    """Residual sum of squares of the least-squares line over ``[lo, hi)`` (needs >= 2 points)."""
    m = np.maximum(hi - lo, 1).astype(np.float64)
    sy = c1[hi] - c1[lo]
    xbar = (lo + hi - 1) / 2.0
    sxy = cx[hi] - cx[lo] - xbar * sy
    sxx = np.maximum(m * (m * m - 1.0) / 12.0, 1e-300)
    return c2[hi] - c2[lo] - sy * sy / m - sxy * sxy / sxx
