"""Change-point detection: where the level, the slope or the noise of a series shifts.

The algorithm (our own; the retired service did not document its change-point model):

1. **Fill.** Missing grid points (NaN) are filled linearly (constant at the ends). They are
   never reported as change points and get confidence 0.
2. **Seasonality.** ``period=None`` detects the period (the Azure model's period detection,
   :func:`ad_pipeline.engine.azure.period.detect_period`; when it finds none, a check of the
   granularity's standard periods on the series detrended by a moving average); ``0`` = none.
   With a period ``p > 1`` (and at least ``2p`` points) a seasonal profile is removed: the
   series minus its centred moving average, folded per phase with a median (robust to spikes
   and to the few periods a change disturbs). The profile first uses the divisor ``q`` of ``p``
   with the least relative GCV error (a daily cycle in hourly data is reported as period 168
   but profiled with 24 phases, from seven times more cycles); when ``q < p`` the profile of
   the full period is then removed from what is left when the means of its blocks of ``q``
   points follow a cycle of ``p / q`` blocks (over 20% of their variance by GCV: a weekly cycle
   on top of the daily one).
3. **Noise scale and spikes.** ``sigma`` = 1.4826 * MAD of the first differences / sqrt(2), a
   robust estimate of the point noise that level shifts and trends barely move. The series is
   put in sigma units and winsorised: every point is clipped to within ``WINSOR_Z`` (3) of its
   7-point moving median (mirrored at the ends), so a spike, or a burst of up to 3, weighs no
   more than an ordinary noise point.
4. **Dependence.** Real series are rarely white noise. The variance inflation ``kappa`` of a
   segment mean is estimated twice, robustly (medians of differences, so level shifts and
   trends barely move it): from the lag-1 autocorrelation ``rho`` (AR(1): ``(1 + rho) /
   (1 - rho)``, ``rho`` from the MAD of lag-2 over lag-1 differences, at most ``RHO_MAX`` =
   0.95) and from the second differences of the means of blocks of ``L`` points (``L`` below;
   white noise gives 1). ``kappa`` = the larger, at least 1. A random walk or a smooth curve
   gets a large ``kappa`` and is not cut into pieces.
5. **Segmentation.** Each segment is a straight line (level and slope) with its own Gaussian
   noise. Binary segmentation splits a segment where the gain is largest. The gain ``G`` of a
   split has two parts. The lines': the drop of the residual sum of squares, divided by
   ``kappa`` and by the local noise variance of the two sides when that exceeds the series'
   (estimated from their first differences about their slopes, shrunk towards the series'
   noise as if that were ``NOISE_PRIOR_POINTS`` = 300 more points), so a noisier stretch is not
   cut into pieces. The noise variances': the likelihood ratio of two noise variances against
   one (each at least ``VAR_FLOOR`` = 0.3), divided by ``kappa`` times ``(kurtosis - 1) / 2`` of
   the noise (the variance ratio of heavy-tailed noise varies more than a Gaussian one's). A
   split must leave at least ``L = max(3, stable_trend_window // 2)`` points on each side (15
   by default). Candidates are kept down to half the penalty; then a backward elimination
   removes, again and again, the candidate with the least gain given its current neighbours;
   the running maximum of those gains at removal is the candidate's ``level`` (so a higher
   threshold only removes change points). A candidate whose gain is mostly the lines' is
   finally moved, within ``L`` points and between its neighbours, to the least-squares split
   of two free lines (a step) or of two lines that meet (a kink), the kink unless the step fits
   better by more than a chi-square(1) of 10.83: a slope change is located where the slopes
   meet. Binary segmentation costs ``O(n log n)`` per series (cumulative sums).
6. **Penalty and confidence.** The penalty is BIC's for the four numbers a change adds (level,
   slope, noise variance, position): ``PENALTY_PER_LOG_N * log(n)`` (4 log n). The confidence of
   a candidate is ``1 / (1 + exp(-(level - penalty) / 2))``, the BIC approximation of the
   posterior probability of the change against no change (even prior odds); every other point
   scores 0. **A point is a change point exactly when its confidence exceeds** ``threshold``
   (default 0.5: ``level`` above the penalty). Calibration, series without any change (see
   ``docs/change_points.md``): white noise, none in 460,000 points (series of 200 to 10,000
   points); AR(1) noise with ``rho`` = 0.6, 0.2 per 10,000 points; clean seasonal series with
   spikes, none in 80,829 points (``benchmarks/changepoints.py``).

``RHO_MAX``, ``SEGMENT_DIVISOR`` and ``NOISE_PRIOR_POINTS`` were chosen on TCPD (with the penalty
factor, 4 or 5, from a grid of 54); ``benchmarks/changepoints.py`` reports the choice
leave-one-series-out beside the in-sample figure.

Defaults: ``stable_trend_window`` = :data:`DEFAULT_STABLE_TREND_WINDOW` (30) points, reduced to
``max(3, n // 4)`` for a series of fewer than 120 grid points; ``threshold`` =
:data:`DEFAULT_THRESHOLD` (0.5). A longer window asks for longer stable segments (changes closer
than ``window // 2`` points are not separated); a higher threshold reports fewer points.

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
from scipy.ndimage import median_filter

from .arrays import interp_nan
from .model import GridSeries
from .params import ChangePointParams
from .result import BoolArray, FloatArray
from .segmentation import binary_segmentation, cumulative_sums, eliminate, gain_parts

DEFAULT_STABLE_TREND_WINDOW = 30
DEFAULT_THRESHOLD = 0.5
MIN_SIDE = 3  # points needed on each side of a change
SEGMENT_DIVISOR = 2  # the fewest points of a segment: stable_trend_window // SEGMENT_DIVISOR
WINSOR_Z = 3.0  # points are clipped to within this many sigma of their moving median ...
WINSOR_WIDTH = 7  # ... over this many points (a burst of up to WINSOR_WIDTH // 2 spikes is clipped)
PENALTY_PER_LOG_N = 4.0  # BIC: level, slope, noise variance and position of a change
RHO_MAX = 0.95  # largest lag-1 autocorrelation used for the variance inflation
VAR_FLOOR = 0.3  # least noise variance of a segment (sigma units): exact repeats do not make a variance change
NOISE_PRIOR_POINTS = 300.0  # the series noise counts as this many points in the local noise of a split
CANDIDATE_FRACTION = 0.5  # binary segmentation keeps candidates down to this fraction of the penalty
KINK_CHI2 = 10.83  # chi-square(1) at p = 0.001: a level gap that makes a kink a step
WEEKLY_EXPLAINED = 0.2  # share of the variance of the q-block means the longer cycle must explain

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
    y = deseasonalise(y, period)
    window = p.stable_trend_window if p.stable_trend_window is not None else default_window(n)
    threshold = p.threshold if p.threshold is not None else DEFAULT_THRESHOLD
    conf = np.zeros(n)
    z = standardise(y)
    if z is not None:
        min_seg = min_segment(window)
        at, level = segment(z, min_seg, PENALTY_PER_LOG_N * np.log(n), missing)
        conf[at] = _confidence(level, PENALTY_PER_LOG_N * np.log(n))
    return period, conf > threshold, conf


def min_segment(window: int) -> int:
    """The fewest points a segment may have: half of ``stable_trend_window``, at least 3.

    >>> min_segment(30), min_segment(5)
    (15, 3)
    """
    return max(MIN_SIDE, window // SEGMENT_DIVISOR)


def deseasonalise(y: FloatArray, period: int) -> FloatArray:
    """``y`` minus its seasonal profile (step 2 of the module docstring); unchanged without a period."""
    if period <= 1 or len(y) < 2 * period:
        return y
    q = _profile_period(y, period)
    y = y - _seasonal(y, q)
    if q != period and _cycle_of_means(y, q, period // q):
        y = y - _seasonal(y, period)
    return y


def _cycle_of_means(y: FloatArray, q: int, k: int) -> bool:
    """Whether the means of blocks of ``q`` points follow a cycle of ``k`` blocks (>= 20% of their variance).

    The block means are detrended by a centred moving *median* over a cycle (``k + 1`` blocks
    for an even ``k``): it cancels a cycle but follows a level shift, which a moving average
    would smear into a ramp that looks like part of a cycle.
    """
    m = len(y) // q
    if k < 2 or m < 3 * k:
        return False
    means = y[: m * q].reshape(m, q).mean(axis=1)
    h = k // 2
    d = (means - median_filter(means, size=2 * h + 1, mode="nearest"))[h : m - h]
    var = float(d.var())
    return bool(var > 0 and 1.0 - _gcv(d, k) / var > WEEKLY_EXPLAINED)


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
    # a period without two cycles in the series cannot be removed: try the standard ones instead
    return period if 0 < period <= len(y) // 2 else _fallback_period(y, granularity, custom_interval)


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
    # n >= 2 * period: every phase holds at least one detrended value. Median per column: sort
    # (NaN last) and take the middle of the finite values (np.nanmedian is far slower here).
    cols = np.sort(padded.reshape(rows, period), axis=0)
    count = np.isfinite(cols).sum(axis=0)
    phase = np.arange(period)
    lo = cols[np.maximum(count - 1, 0) // 2, phase]
    hi = cols[np.minimum(count // 2, rows - 1), phase]
    prof = np.where(count > 0, 0.5 * (lo + hi), 0.0)
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


def standardise(y: FloatArray) -> FloatArray | None:
    """The series in noise units, winsorised around its moving median; None when it has no noise."""
    n = len(y)
    sigma = noise_scale(y)
    if n < 2 * MIN_SIDE or sigma == 0.0 or not np.isfinite(sigma):
        return None
    z = (y - np.median(y)) / sigma
    # without the median slope (the line cost ignores it) the cumulative sums stay small
    z = z - np.median(np.diff(z)) * np.arange(n, dtype=np.float64)
    z -= np.median(z)
    if n >= WINSOR_WIDTH:
        med = median_filter(z, size=WINSOR_WIDTH, mode="mirror")  # an end point is not its own neighbour
        z = np.clip(z, med - WINSOR_Z, med + WINSOR_Z)
    return z


def variance_inflation(z: FloatArray, block: int) -> float:
    """``kappa``: how much dependence inflates the variance of a segment mean (step 4), at least 1."""
    v1 = _mad2(np.diff(z))
    if not v1 > 0:
        return 1.0
    rho = min(max(_mad2(z[2:] - z[:-2]) / v1 - 1.0, 0.0), RHO_MAX)
    kappa = (1.0 + rho) / (1.0 - rho)
    m = len(z) // block
    if m >= 8:
        means = z[: m * block].reshape(m, block).mean(axis=1)
        kappa = max(kappa, block * _mad2(np.diff(means, 2)) / (3.0 * v1))
    return max(kappa, 1.0)


def _kurtosis_factor(z: FloatArray) -> float:
    """How much heavier than Gaussian tails inflate the variance-ratio statistic: ``(kurtosis - 1) / 2``, at least 1.

    The kurtosis of the noise comes from that of the first differences (``k_e = 2 k_d - 3``).
    """
    d = np.diff(z)
    d = d - np.median(d)
    m2 = float(np.mean(d * d))
    if not m2 > 0:
        return 1.0
    k_noise = 2.0 * float(np.mean(d**4)) / (m2 * m2) - 3.0
    return max(1.0, (k_noise - 1.0) / 2.0)


def _mad2(d: FloatArray) -> float:
    """Squared robust scale (1.4826 * MAD) of ``d``."""
    return float((1.4826 * np.median(np.abs(d - np.median(d)))) ** 2) if len(d) else 0.0


def segment(z: FloatArray, min_seg: int, penalty: float, missing: BoolArray) -> tuple[np.ndarray, FloatArray]:
    """Candidate change points of ``z`` (noise units) and their levels in effective chi-square units.

    Binary segmentation with line-and-variance segments down to ``CANDIDATE_FRACTION * penalty``,
    then the backward elimination of step 5 (both compiled with numba). Splits sit only at
    observed points.
    """
    n = len(z)
    kappa = variance_inflation(z, min_seg)
    kappa_var = kappa * _kurtosis_factor(z)  # the variance-ratio term: dependence and heavy tails
    sums = cumulative_sums(z)
    consts = (kappa, kappa_var, VAR_FLOOR, NOISE_PRIOR_POINTS)
    at = binary_segmentation(*sums, ~missing, min_seg, CANDIDATE_FRACTION * penalty, *consts)
    level = eliminate(*sums, at, *consts)
    if len(at):
        # refine between the strong neighbours (above the penalty, whatever the user's threshold)
        strong = at[level > penalty]
        lo = np.r_[0, strong][np.searchsorted(strong, at, side="left")]
        hi = np.r_[strong, n][np.searchsorted(strong, at, side="right")]
        parts = np.array([gain_parts(*sums, a, s, b, *consts) for a, s, b in zip(lo, at, hi, strict=True)])
        moved = _refine(z, at, lo, hi, min_seg, missing)
        at = np.where(parts[:, 0] >= parts[:, 1], moved, at)  # a change of the noise stays where its gain peaks
        keep = _merge_close(at, level, min_seg - 1)  # two candidates moved closer than min_seg
        at, level = at[keep], level[keep]
    return at, level


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


def _refine(
    z: FloatArray, cand: np.ndarray, lo: np.ndarray, hi: np.ndarray, reach: int, missing: BoolArray
) -> np.ndarray:
    """Move each candidate to the best split ``s`` (within ``reach``) of its range ``[lo, hi)``.

    ``reach`` is also the fewest points left on each side. Binary segmentation places a slope
    change where two free lines fit best, which is not where the slopes meet. Two models are
    fitted at every split ``s``: two free lines (a step, RSS ``r_jump``) and two lines
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
    ok = (s - lo >= max(reach, MIN_SIDE)) & (hi - s >= max(reach, MIN_SIDE))
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


def _confidence(level: FloatArray, penalty: float) -> FloatArray:
    """BIC posterior probability of each change: ``1 / (1 + exp(-(level - penalty) / 2))``."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-(level - penalty) / 2.0))


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
