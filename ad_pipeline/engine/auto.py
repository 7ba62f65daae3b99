"""``method="auto"``: the most accurate detector we could build, with a calibrated sensitivity.

The model, per series (all numpy, no per-point Python):

1. **Grid.** Missing points are linearly interpolated for the fit (never flagged). A series whose
   grid is more than half empty (irregular sampling) is modelled on its observed points in order.
2. **Seasonality.** Candidate periods are one day and one week of the series' granularity; a
   candidate is kept when a per-phase median profile explains at least 30% of the (robust)
   spread of the detrended series; the strongest wins. When no calendar period fits, the azure
   model's autocorrelation search proposes one (same 30% test). An explicit ``period`` is used as given.
3. **Season**: the per-phase median of the series less its one-season running median, one
   profile for the whole series (so it is the same at the ends as in the middle).
4. **Levels**, each a robust median of the deseasonalised series, each a separate test:
   a *centred* fast level (``FAST_WINDOW`` points, interior points only), a *one-sided* fast
   level (the ``FAST_WINDOW`` points before a point; after it for the first points) and a
   one-sided slow level (two seasons), which does not absorb platforms and level shifts: the
   shifted stretch stays flagged while the slow level lags. One-sided levels judge every point
   against the same amount of data, so the first and last points are judged like the middle and
   ``detect_last`` gives the newest point the entire-series verdict (computed causally).
   **Incident masking**: points flagged in a first fit are left out of the levels and scales of a second.
5. **Robust scale** of each test's residual, the largest of: the local scale of first differences
   (blocks of about two days), the per-phase scale of the residual, and the series' mean absolute
   residual. Heavy residual tails raise that test's threshold by ``sqrt(q95(z) / 1.96)``.
6. **Score**: a point's score is the largest ``|residual| / (threshold * scale)`` over the tests;
   it is an anomaly above 1, at most ``max_anomaly_ratio`` of the points (highest scores first).
   ``expected`` and the margins are those of the test that scores highest, widened to cover the
   unflagged points; ``severity = 1 - 1 / score`` ranks spikes, dips, shifts and variance bursts
   on one scale (0 for normal points).

**Sensitivity is a false-alarm rate.** For Gaussian noise, sensitivity ``s`` expects about
``documented_false_alarm_rate(s) = 10 ** (-7 + 3 * s / 100)`` false alarms per normal point, shared
by the tests (each gets its part of the two-sided Gaussian tail). Measured on clean series
(``tests/engine/test_auto.py``): within 2x of the rate for noise around a level, a trend or a season;
up to ~10x on random walks (one-sided residuals of a wandering series have heavier tails).

=========== ===================== =================
sensitivity false alarms / point  one alarm per ...
=========== ===================== =================
50          3.2e-06               316,000 points
80          2.5e-05               39,800 points
95          7.1e-05               14,100 points
99          9.3e-05               10,700 points
=========== ===================== =================

>>> import numpy as np
>>> from ad_pipeline import detect_entire
>>> x = 10 + np.sin(np.arange(480) * 2 * np.pi / 24) + np.random.default_rng(0).normal(0, 0.1, 480)
>>> x[300] += 3
>>> r = detect_entire(x, method="auto", period=24)
>>> np.flatnonzero(r.is_anomaly).tolist()
[300]
>>> int(np.argmax(r.severity))  # severity ranks the injected spike first
300
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import median_filter
from scipy.special import ndtri

from ..errors import AnomalyDetectorError
from .arrays import interp_nan
from .model import EntireOutput, GridSeries, LastOutput, suggested_window

TREND_WINDOW = 31  # points: detrending window of the period choice
FAST_WINDOW = 15  # points: the fast level (centred and one-sided medians), follows wandering series
SLOW_SEASONS = 2  # seasons: the slow one-sided level (seasonal series), does not absorb platforms and level shifts
SCALE_WINDOW = 576  # points: the local noise scale is a median over blocks of ~2 days of 5-minute data
MIN_SEASONAL_STRENGTH = 0.3
RELATIVE_FLOOR = 0.03  # noise below 3% of the series' standard deviation counts as a perfect fit
TAIL_QUANTILE = 0.95  # heavy residual tails raise the threshold by sqrt(q95(z) / 1.96)
_TAIL_Z = float(ndtri(0.5 + TAIL_QUANTILE / 2))  # 1.96: the Gaussian's q95 of |z|
_SECONDS = {"weekly": 604_800, "daily": 86_400, "hourly": 3_600, "minutely": 60, "secondly": 1}


def documented_false_alarm_rate(sensitivity: float) -> float:
    """Expected false alarms per normal point at ``sensitivity`` (Gaussian noise).

    >>> round(1 / documented_false_alarm_rate(99))
    10715
    """
    return float(10.0 ** (-7.0 + 3.0 * float(sensitivity) / 100.0))


def threshold(sensitivity: float, components: int = 1) -> float:
    """The z threshold of ``sensitivity``: two-sided Gaussian tail of the documented rate, shared
    by ``components`` tests (each gets its part, so together they keep the documented rate).

    >>> round(threshold(99), 2), round(threshold(99, 3), 2)
    (3.91, 4.17)
    """
    return float(ndtri(1.0 - documented_false_alarm_rate(sensitivity) / 2.0 / components))


def _running_median(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    w = max(1, min(int(window), len(x)) | 1)
    if w > len(x):
        w -= 2
    return median_filter(x, size=w, mode="nearest")


def _nanmedian_rows(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median of each column of ``a`` ignoring NaN (NaN where a column has no value); sort based, fast."""
    s = np.sort(a, axis=0)  # NaN sorts last
    count = np.count_nonzero(~np.isnan(a), axis=0)
    lo = np.maximum((count - 1) // 2, 0)
    hi = np.maximum(count // 2, 0)
    cols = np.arange(a.shape[1])
    med = 0.5 * (s[lo, cols] + s[hi, cols])
    return np.where(count > 0, med, np.nan)


def _phase_median(d: NDArray[np.float64], period: int) -> NDArray[np.float64]:
    """Median of ``d`` (NaN = left out) per phase ``i % period``, repeated over the series."""
    n = len(d)
    m = -(-n // period) * period
    a = np.full(m, np.nan)
    a[:n] = d
    prof = _nanmedian_rows(a.reshape(-1, period))
    return np.tile(prof, m // period)[:n]


def _mad(a: NDArray[np.float64]) -> float:
    return float(np.median(np.abs(a - np.median(a))))


def _fill_nan(a: NDArray[np.float64], fallback: float) -> NDArray[np.float64]:
    return np.full_like(a, fallback) if np.isnan(a).all() else interp_nan(a)


def _candidate_periods(gs: GridSeries, n: int) -> list[int]:
    """One day and one week in points, where the granularity allows and 3 cycles fit."""
    step = _SECONDS.get(gs.granularity, 0) * gs.custom_interval
    if not step or 86_400 % step:
        return []
    day = 86_400 // step
    return [p for p in (day, 7 * day) if p >= 4 and n >= 3 * p]


def _choose_period(x: NDArray[np.float64], candidates: list[int]) -> int:
    """The candidate whose per-phase profile explains most (at least 30%) of the detrended spread."""
    best, period = MIN_SEASONAL_STRENGTH, 0
    for p in candidates:
        d = x - _running_median(x, max(TREND_WINDOW, p + 1))
        spread = _mad(d)
        if spread == 0:
            continue
        strength = 1.0 - _mad(d - _phase_median(d, p)) / spread
        if strength > best:
            best, period = strength, p
    return period


def _block_median(a: NDArray[np.float64], window: int, fallback: float) -> NDArray[np.float64]:
    """Local median of ``a`` (NaN = left out): medians of blocks of ``window/4`` points, smoothed over 5 blocks."""
    n = len(a)
    block = max(16, min(window, n) // 4)
    nb = -(-n // block)
    padded = np.full(nb * block, np.nan)
    padded[:n] = a
    blocks = padded.reshape(nb, block)
    enough = np.count_nonzero(~np.isnan(blocks), axis=1) >= block // 4
    med = np.full(nb, np.nan)
    if enough.any():
        med[enough] = _nanmedian_rows(blocks[enough].T)
    med = _fill_nan(med, fallback)
    if nb >= 3:
        med = median_filter(med, size=min(5, nb - (1 - nb % 2)), mode="nearest")
    return np.repeat(med, block)[:n]


def _step_scale(d: NDArray[np.float64], masked: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Local robust scale of first differences of the deseasonalised series (blind to level shifts,
    so a sustained anomaly cannot hide itself); the incident points in ``masked`` are left out."""
    step = np.abs(np.diff(d, prepend=d[0])) / np.sqrt(2.0)
    if len(step) > 1:
        step[0] = step[1]
    return 1.4826 * _block_median(np.where(masked, np.nan, step), SCALE_WINDOW, 0.0)


def _scale(
    r: NDArray[np.float64], local: NDArray[np.float64], period: int, spread: float, masked: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Robust noise scale per point of the residual ``r``; the incident points in ``masked`` do not inflate it.

    The largest of: the ``local`` scale of first differences (:func:`_step_scale`), the per-phase
    scale of the residual (noise that follows the season), and a floor (the mean absolute
    residual; ``RELATIVE_FLOOR`` of the series' spread).
    """
    floor = max(1.2533 * float(np.mean(np.abs(r))), RELATIVE_FLOOR * spread, 1e-12)  # r is centred by its level
    sc = local
    if period:
        ph = _phase_median(np.where(masked, np.nan, np.abs(r)), period)[:period]
        ph = median_filter(1.4826 * _fill_nan(ph, floor / 1.4826), size=max(3, (period // 24) | 1), mode="wrap")
        sc = np.maximum(sc, np.tile(ph, -(-len(r) // period))[: len(r)])
    return np.maximum(sc, floor)


def _one_sided_median(
    d: NDArray[np.float64], window: int, centred: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Median of the ``window`` points before each point (after it, for the first ``window`` points).

    Every point is judged against the same amount of data on one side, so the first and the last
    points are judged like the middle (no extrapolated trend, no shrinking window at the ends),
    and the newest point gets the verdict a causal (streaming) detector would give it.
    """
    n = len(d)
    w = max(1, min(int(window), n - 1) | 1)
    if w >= n:
        w -= 2
    if w < 1:
        return np.full(n, float(np.median(d)))
    h = w // 2
    if centred is None or w != (max(1, min(int(window), n) | 1)):
        centred = median_filter(d, size=w, mode="nearest")
    idx = np.arange(n)
    src = np.where(idx >= w, idx - h - 1, idx + h + 1)
    return centred[np.clip(src, 0, n - 1)]


def _centred_median(d: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    w = max(1, min(int(window), len(d)) | 1)
    return median_filter(d, size=w, mode="nearest")


def _season(x: NDArray[np.float64], period: int) -> NDArray[np.float64]:
    """Per-phase median of ``x`` less its one-season running median, refined once (zero without a period)."""
    if not period:
        return np.zeros(len(x))
    w = period + 1 | 1
    s = _phase_median(x - median_filter(x, size=min(w, len(x) - (1 - len(x) % 2)), mode="reflect"), period)
    s = _phase_median(x - median_filter(x - s, size=min(w, len(x) - (1 - len(x) % 2)), mode="reflect"), period)
    return s - np.median(s)


def _detect(gs: GridSeries) -> EntireOutput:
    p = gs.params
    values = gs.values
    observed = ~np.isnan(values)
    contiguous = observed.mean() < 0.5  # irregular sampling: model the observed points in order
    x = values[observed] if contiguous else interp_nan(values)
    n = len(x)
    candidates = [] if contiguous else _candidate_periods(gs, n)
    if p.period is not None:
        period = p.period if 1 < p.period <= n // 2 else 0
    else:
        period = _choose_period(x, candidates)
        if not period and not contiguous and n >= 12:  # no calendar season: search any (the azure model's search)
            from .azure.period import spectrum_period

            q = spectrum_period(x)
            period = _choose_period(x, [q]) if q >= 4 and n >= 3 * q else 0
    tests = [(FAST_WINDOW, True), (FAST_WINDOW, False), (SLOW_SEASONS * period + 1 if period and SLOW_SEASONS else 0, False)]
    tests = [(w, c) for w, c in tests if w and not (c and 2 * w >= n)]
    thr = threshold(p.sensitivity, len(tests))  # the documented rate is shared by the tests
    spread = float(np.std(x))

    season = _season(x, period)  # per-phase medians: robust to incidents already
    d = x - season
    masked = np.zeros(n, dtype=bool)
    for _ in range(2):  # a second pass fits the levels without the first pass' anomalies (incident masking)
        dy = _fill_nan(np.where(masked, np.nan, d), float(np.median(d))) if masked.any() else d
        comps = []
        medians: dict[int, NDArray[np.float64]] = {}
        local = _step_scale(d, masked)
        for w, centred in tests:
            if w not in medians:
                medians[w] = _centred_median(dy, w)
            level = medians[w] if centred else _one_sided_median(dy, w, medians[w])
            resid = d - level
            scale = _scale(resid, local, period, spread, masked)
            z = np.abs(resid) / scale
            if centred:  # no centred window at the ends: there the one-sided levels judge alone
                z[: w // 2] = z[n - w // 2 :] = -1.0
            ok = z[~masked & (z > 0)]  # points on the level (ties of a sparse series) say nothing of its tail
            q = int(TAIL_QUANTILE * (ok.size - 1))
            tail = float(np.partition(ok, q)[q]) / _TAIL_Z if ok.size > 10 else 1.0
            comps.append((level, resid, scale, thr * float(np.sqrt(max(1.0, tail))), z))
        ratio = np.stack([np.where(z >= 0, np.abs(r) / (t * sc), -1.0) for _, r, sc, t, z in comps])
        score = ratio.max(axis=0)
        if masked.any() or not (score > 1.0).any():
            break
        masked = score > 1.0

    win = np.argmax(ratio, axis=0)
    pick = np.arange(n)
    level = np.stack([c[0] for c in comps])[win, pick]
    resid = np.stack([c[1] for c in comps])[win, pick]
    margin = np.stack([c[3] * c[2] for c in comps])[win, pick]
    expected = season + level

    obs = np.ones(n, dtype=bool) if contiguous else observed
    flag = (score > 1.0) & obs
    limit = int(np.ceil(p.max_anomaly_ratio * n))
    if flag.sum() > limit:
        keep = np.argsort(-np.where(flag, score, -np.inf), kind="stable")[:limit]
        capped = np.zeros(n, dtype=bool)
        capped[keep] = True
        flag &= capped
    margin = np.where(~flag & (np.abs(resid) > margin), np.abs(resid), margin)
    severity = np.where(flag, 1.0 - 1.0 / np.maximum(score, 1.0), 0.0)

    def grid(a: NDArray, fill: float | bool) -> NDArray:
        if not contiguous:
            return a
        out = np.full(len(values), fill, dtype=a.dtype)
        out[observed] = a
        return out

    return EntireOutput(
        period=int(period),
        expected=grid(expected, np.nan),
        upper_margin=grid(margin, np.nan),
        lower_margin=grid(margin.copy(), np.nan),
        is_anomaly=grid(flag, False),
        is_positive=grid(flag & (resid > 0), False),
        is_negative=grid(flag & (resid < 0), False),
        severity=grid(severity, np.nan),
    )


class _Auto:
    """The ``auto`` model: see the module docstring."""

    def entire(self, batch: Sequence[GridSeries]) -> list[EntireOutput | AnomalyDetectorError]:
        return [_detect(gs) for gs in batch]

    def last(self, batch: Sequence[GridSeries]) -> list[LastOutput | AnomalyDetectorError]:
        out: list[LastOutput | AnomalyDetectorError] = []
        for gs in batch:
            e = _detect(gs)
            out.append(
                LastOutput(
                    period=e.period,
                    suggested_window=suggested_window(e.period, gs.granularity),
                    expected=float(e.expected[-1]),
                    upper_margin=float(e.upper_margin[-1]),
                    lower_margin=float(e.lower_margin[-1]),
                    is_anomaly=bool(e.is_anomaly[-1]),
                    is_positive=bool(e.is_positive[-1]),
                    is_negative=bool(e.is_negative[-1]),
                    severity=float(e.severity[-1]),
                )
            )
        return out


AUTO = _Auto()
