"""Seasonal path (reference §3, §6): robust STL, outlier pass, log STL, ESD/Z on two series.

The decompositions of many series run as one batched STL call per stage (first fit, refit after
the outlier pass, log fit), so a batch of seasonal series costs a few compiled calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..arrays import interp_nan
from .esd import esd, flags_from, max_outliers, z_test
from .stl import stl_batch
from .util import EPS, BoolArray, FloatArray, ffill, normalise

Components = tuple[FloatArray, FloatArray]  # trend, seasonal


def _stl_many(xs: Sequence[FloatArray], periods: Sequence[int]) -> list[Components]:
    if not xs:
        return []
    lengths = np.fromiter((len(x) for x in xs), dtype=np.int64, count=len(xs))
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    trend, seasonal = stl_batch(np.concatenate(xs), offsets, np.asarray(periods, dtype=np.int64))
    return [(trend[a:b], seasonal[a:b]) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


def _mape(rem: FloatArray, x: FloatArray) -> float:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf/NaN MAPE is meaningful (see §6)
        return float(np.mean(np.abs(rem / x)))


@dataclass
class Fit:
    """One decomposition: trend, seasonal and remainder (on the log scale's shifted values for a log fit)."""

    trend: FloatArray
    seasonal: FloatArray
    remainder: FloatArray


def _fits(xs: Sequence[FloatArray], periods: Sequence[int], log: bool) -> list[Fit]:
    """STL of each series, or the log STL (§6): ``y = x - min + 1`` when ``min < 1``, STL of
    ``ln y``, trend ``e^T`` (shifted back), seasonal ``e^(T+S) - e^T``, remainder ``y - e^(T+S)``."""
    if not log:
        return [Fit(t, s, x - t - s) for x, (t, s) in zip(xs, _stl_many(xs, periods), strict=True)]
    bases = [float(np.min(x)) for x in xs]
    ys = [x - b + 1 if b < 1 else x for x, b in zip(xs, bases, strict=True)]
    out = []
    for y, b, (lt, ls) in zip(ys, bases, _stl_many([np.log(y) for y in ys], periods), strict=True):
        trend = np.exp(lt)
        seasonal = np.exp(lt + ls) - trend
        remainder = y - trend - seasonal
        out.append(Fit(trend - 1 + b if b < 1 else trend, seasonal, remainder))
    return out


def _fits_adjusted(xs: Sequence[FloatArray], periods: Sequence[int], log: bool) -> list[Fit]:
    """The last-mode "adjust-trend" fits (§4): each series is also decomposed extended by the
    median of its last point's phase; the fit with the smaller remainder at the last point wins."""
    ext = [np.append(x, np.median(x[len(x) - p :: -p])) for x, p in zip(xs, periods, strict=True)]
    fits = _fits(list(xs) + ext, list(periods) * 2, log)
    out = []
    for i, x in enumerate(xs):
        n = len(x)
        orig, longer = fits[i], fits[len(xs) + i]
        if abs(orig.remainder[n - 1]) <= abs(longer.remainder[n - 1]):
            out.append(orig)
        else:
            out.append(Fit(longer.trend[:n], longer.seasonal[:n], longer.remainder[:n]))
    return out


def _outlier_refit_input(fit: Fit, period: int) -> FloatArray | None:
    """``D' + trend`` when the 3-sigma pass on ``D = seasonal + remainder`` replaces points (§6)."""
    d = fit.remainder + fit.seasonal
    n = len(d)
    sd = float(d.std())
    if sd == 0:
        return None
    out = np.abs(d - d.mean()) / sd >= 3
    if not out.any():
        return None
    phase = np.arange(n) % period
    cnt = np.bincount(phase[out], minlength=period)
    out &= cnt[phase] <= int((n / period) / 2)
    if not out.any():
        return None
    d2 = d.copy()
    d2[out] = np.nan
    return ffill(d2) + fit.trend


def _fits_without_outliers(xs: Sequence[FloatArray], periods: Sequence[int], log: bool, last: bool) -> list[Fit]:
    """A fit, refitted where its 3-sigma outliers were replaced by the previous value (§6)."""
    fit = _fits_adjusted if last else _fits
    fits = fit(xs, periods, log)
    redo = [(i, y) for i in range(len(xs)) if (y := _outlier_refit_input(fits[i], periods[i])) is not None]
    for (i, _), f in zip(redo, fit([y for _, y in redo], [periods[i] for i, _ in redo], log), strict=True):
        fits[i] = f
    return fits


def decompose_many(xs: Sequence[FloatArray], periods: Sequence[int], last: bool = False) -> list[Components]:
    """Trend and seasonal of each series: STL with the outlier pass, or the log STL (with its own
    outlier pass) when the remainder's MAPE exceeds 0.10 and the log fit's is below 0.05.

    In last mode (``last=True``) every STL is the "adjust-trend" pair (§4), as the release runs it.
    """
    fits = _fits_without_outliers(xs, periods, False, last)
    logs = [i for i, x in enumerate(xs) if _mape(fits[i].remainder, x) > 0.10]
    if logs:
        log_fits = _fits_without_outliers([xs[i] for i in logs], [periods[i] for i in logs], True, last)
        for i, f in zip(logs, log_fits, strict=True):
            if _mape(f.remainder, xs[i]) < 0.05:
                fits[i] = f
    return [(f.trend, f.seasonal) for f in fits]


@dataclass
class SeasonalResult:
    expected: FloatArray
    trend: FloatArray
    flags: BoolArray


def seasonal_detect(
    x: FloatArray, period: int, ratio: float, last: bool, components: Components | None = None
) -> SeasonalResult:
    """Flags and expected values of a seasonal series (``components`` from :func:`decompose_many`)."""
    n = len(x)
    if components is None:
        components = decompose_many([x], [period], last)[0]
    trend, seasonal = components
    ratio = max(ratio, 1 / n)
    k = max_outliers(n, ratio)
    d = x - seasonal
    r = d - trend
    dn, rn = normalise(d), normalise(r)
    flags = flags_from([esd(dn, k, last), z_test(dn, k, last), esd(rn, k, last)], n, k)
    t = trend.copy()
    t[flags] = np.nan
    h = period // 2
    if h > 0 and np.count_nonzero(flags[n - h :]) >= h / 2:
        t[n - h :] = np.nan
    t = interp_nan(t) if not np.isnan(t).all() else trend
    expected = t + seasonal
    flags &= np.abs(x - expected) >= EPS
    return SeasonalResult(expected, t, flags)
