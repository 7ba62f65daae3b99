"""Seasonal path (reference §3, §6): robust STL, outlier pass, log STL, ESD/Z on two series.

The decompositions of many series run as one batched STL call per stage (first fit, refit after
the outlier pass, log fit), so a batch of seasonal series costs a few compiled calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..stl import stl_batch
from .esd import esd, flags_from, max_outliers, z_test
from .util import EPS, BoolArray, FloatArray, ffill, interp_nan, normalise

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


def _outlier_refit_input(x: FloatArray, trend: FloatArray, period: int) -> FloatArray | None:
    """``D' + trend`` when the 3-sigma pass on ``D = seasonal + remainder`` replaces points."""
    n = len(x)
    d = x - trend
    sd = float(d.std())
    if sd <= 0:
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
    return ffill(d2) + trend


def decompose_many(xs: Sequence[FloatArray], periods: Sequence[int]) -> list[Components]:
    """Trend and seasonal of each series: STL, the outlier pass, the log STL when it fits better."""
    comps = _stl_many(xs, periods)
    redo = [
        (i, y)
        for i in range(len(xs))
        if (y := _outlier_refit_input(xs[i], comps[i][0], periods[i])) is not None
    ]
    for (i, _), c in zip(redo, _stl_many([y for _, y in redo], [periods[i] for i, _ in redo]), strict=True):
        comps[i] = c
    logs = []
    for i, x in enumerate(xs):
        trend, seasonal = comps[i]
        if _mape(x - trend - seasonal, x) > 0.10:
            b = float(np.min(x))
            logs.append((i, b, x - b + 1 if b < 1 else x))
    if logs:
        fits = _stl_many([np.log(y) for _, _, y in logs], [periods[i] for i, _, _ in logs])
        for (i, b, y), (lt, ls) in zip(logs, fits, strict=True):
            et = np.exp(lt)
            ets = np.exp(lt + ls)
            if _mape(y - ets, xs[i]) < 0.05:
                comps[i] = (et + (b - 1 if b < 1 else 0.0), ets - et)
    return comps


def decompose_last_many(xs: Sequence[FloatArray], periods: Sequence[int]) -> list[Components]:
    """Last-mode decomposition: also decompose each series extended by its same-phase median and
    keep the fit with the smaller remainder at the last point (the "adjust-trend" variant)."""
    ext = [np.append(x, np.median(x[len(x) - p :: -p])) for x, p in zip(xs, periods, strict=True)]
    comps = decompose_many(list(xs) + ext, list(periods) * 2)
    out = []
    for i, x in enumerate(xs):
        n = len(x)
        (t0, s0), (t1, s1) = comps[i], comps[len(xs) + i]
        r0 = x[n - 1] - t0[n - 1] - s0[n - 1]
        r1 = x[n - 1] - t1[n - 1] - s1[n - 1]
        out.append((t0, s0) if abs(r0) <= abs(r1) else (t1[:n], s1[:n]))
    return out


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
        components = (decompose_last_many if last else decompose_many)([x], [period])[0]
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
