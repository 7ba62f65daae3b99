"""Model selection and the per-series pipeline of the Azure model (entire and last mode).

One series goes: period (given or detected) -> fill or compress -> seasonal STL path, Spectral
Residual (minutely/secondly without period) or the dynamic spline path (+ differencing) ->
margins V1 or V2/V3. Arrays come back aligned with the series' grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import AnomalyDetectorError
from ..model import EntireOutput, GridSeries, LastOutput, suggested_window
from .difference import difference_order, integrate, remaining_ratio
from .dynamic import dynamic_detect
from .impute import fill, fills
from .margins import Margins, v1_relative, v1_sr, v3
from .period import detect_period
from .seasonal import Components, decompose_many, seasonal_detect
from .spline import guess_period, spline_trend
from .sr import sr_detect
from .util import EPS, FloatArray, ffill


@dataclass
class Detection:
    period: int
    expected: FloatArray
    margins: Margins


def model_period(gs: GridSeries) -> int:
    """The period the model uses: the given one, or detected on the (provisionally) filled series."""
    p = gs.params
    if p.period is not None:
        return p.period
    x = gs.values
    miss = np.isnan(x)
    n_missing = int(miss.sum())
    if n_missing > 0.5 * len(x):
        return 0
    if n_missing == 0:
        xp = x
    elif p.impute_mode == "notFill":
        xp = x[~miss]
    elif p.impute_mode == "auto":
        xp = ffill(x)
    else:
        xp = fill(x, p.impute_mode, p.impute_fixed_value, 0)
    return detect_period(xp, gs.granularity, gs.custom_interval)


def model_input(gs: GridSeries, period: int) -> tuple[FloatArray, np.ndarray]:
    """The series the model sees and the grid index of each of its points."""
    x = gs.values
    miss = np.isnan(x)
    p = gs.params
    if fills(p.impute_mode, period, int(miss.sum()), len(x)):
        return fill(x, p.impute_mode, p.impute_fixed_value, period), np.arange(len(x))
    keep = np.flatnonzero(~miss)
    return (x if len(keep) == len(x) else x[keep]), keep


def _uses_sr(x: FloatArray, granularity: str, custom_interval: int) -> bool:
    if not ((granularity == "minutely" and custom_interval < 60) or granularity == "secondly"):
        return False
    return float(np.median(np.abs(x - np.median(x)))) >= EPS


def _histogram_ratio(raw: FloatArray, ratio: float) -> float:
    lo, hi = float(np.min(raw)), float(np.max(raw))
    if hi > lo:
        with np.errstate(over="ignore", invalid="ignore"):
            pos = (raw - lo) / (hi - lo) * 20
        counts = np.bincount(np.clip(np.nan_to_num(pos, nan=0.0), 0, 19).astype(np.int64), minlength=20)
        share = counts.max() / len(raw)
    else:
        share = 1.0
    if share > 0.6:
        return max((1 - share) * ratio, min(0.05, ratio))
    return ratio


def _non_seasonal(
    x: FloatArray, gs: GridSeries, ratio: float, last: bool, need_trend: bool
) -> tuple[FloatArray, np.ndarray, FloatArray | None, bool, FloatArray]:
    """SR or dynamic path with differencing: expected, flags, SR score (or None), zscore model, trend.

    The trend (for V2/V3 margins) is the dynamic path's expected values, or the spline of the SR
    expected values; at points the differenced rerun adds, expected values and trend are both
    continued from the point before (§8).
    """
    use_sr = _uses_sr(x, gs.granularity, gs.custom_interval)

    def run(y: FloatArray, r: float) -> tuple[FloatArray, np.ndarray, FloatArray | None, bool, FloatArray]:
        if use_sr:
            res = sr_detect(y, r, last)
            e = res.expected
            trend = spline_trend(e, 2 * guess_period(e) - 1) if need_trend else e
            return e, res.flags, res.score, res.zscore_model, trend
        dyn = dynamic_detect(y, r, last)
        return dyn.expected, dyn.flags, None, False, dyn.expected

    expected, flags, score, zmodel, trend = run(x, ratio)
    n = len(x)
    rest = remaining_ratio(n, ratio, int(flags.sum()))
    if rest > 0 and n >= 12:
        delta, d = difference_order(x)
        if delta:
            e_hat, f2, s2, _, t_hat = run(d, rest)
            new = f2 & ~flags
            new[0] = False
            if new.any():
                idx = np.flatnonzero(new)
                expected = expected.copy()
                expected[idx] = expected[idx - 1] + integrate(x, e_hat, delta)[idx]
                trend = trend.copy()
                trend[idx] = trend[idx - 1] + integrate(x, t_hat, delta)[idx]
                flags = flags | new
                if score is not None and s2 is not None:
                    score = score.copy()
                    score[idx] = s2[idx]
    return expected, flags, score, zmodel, trend


@dataclass
class Prepared:
    """One series ready for its model: the contiguous values and their grid positions."""

    gs: GridSeries
    period: int
    x: FloatArray
    keep: np.ndarray

    @property
    def seasonal(self) -> bool:
        return self.period > 1 and len(self.x) >= 2 * self.period + 1


def prepare(gs: GridSeries) -> Prepared:
    """Period, then fill (or compress to the observed points)."""
    period = model_period(gs)
    x, keep = model_input(gs, period)
    return Prepared(gs, period, x, keep)


def run_model(prep: Prepared, last: bool, components: Components | None = None) -> Detection:
    """Detect on the contiguous series (filled or compressed); margins over the observed points."""
    x, gs, period = prep.x, prep.gs, prep.period
    p = gs.params
    ratio = p.max_anomaly_ratio
    if last:
        raw = gs.values[~np.isnan(gs.values)]
        ratio = _histogram_ratio(raw, ratio)
    s = p.sensitivity
    v3_mode = p.boundary_version in ("V2", "V3")
    score: FloatArray | None = None
    zmodel = False
    if prep.seasonal:
        res = seasonal_detect(x, period, ratio, last, components)
        expected, flags, trend = res.expected, res.flags, res.trend
    else:
        expected, flags, score, zmodel, trend = _non_seasonal(x, gs, ratio, last, v3_mode)
        flags = flags & (np.abs(x - expected) >= EPS)
    # the release drops filled points before it builds margins (clipping range, V3 unit)
    obs = ~np.isnan(gs.values[prep.keep])
    sub = (lambda a: a) if obs.all() else (lambda a: a[obs])
    if v3_mode:
        m = v3(sub(x), sub(expected), sub(trend), sub(flags), s)
    elif score is not None and not zmodel:
        m = v1_sr(sub(x), sub(expected), sub(flags), sub(score), s)
    else:
        m = v1_relative(sub(x), sub(expected), sub(flags), s)
    if not obs.all():
        m = Margins(*(_expand(a, np.flatnonzero(obs), len(x), fill) for a, fill in
                      ((m.upper, np.nan), (m.lower, np.nan), (m.flags, False), (m.severity, np.nan))))
    return Detection(period, expected, m)


def _expand(values: np.ndarray, keep: np.ndarray, m: int, fill_value: float | bool) -> np.ndarray:
    if len(keep) == m:
        return values
    out = np.full(m, fill_value, dtype=values.dtype)
    out[keep] = values
    return out


def _entire_output(prep: Prepared, det: Detection) -> EntireOutput:
    mg, keep, x, e = det.margins, prep.keep, prep.x, det.expected
    m = len(prep.gs.values)
    flags = mg.flags
    return EntireOutput(
        period=prep.period,
        expected=_expand(e, keep, m, np.nan),
        upper_margin=_expand(mg.upper, keep, m, np.nan),
        lower_margin=_expand(mg.lower, keep, m, np.nan),
        is_anomaly=_expand(flags, keep, m, False),
        is_positive=_expand(flags & (x > e), keep, m, False),
        is_negative=_expand(flags & (x < e), keep, m, False),
        severity=_expand(mg.severity, keep, m, np.nan),
    )


def _last_output(prep: Prepared, det: Detection) -> LastOutput:
    mg = det.margins
    e = float(det.expected[-1])
    v = float(prep.x[-1])
    flag = bool(mg.flags[-1])
    return LastOutput(
        period=prep.period,
        suggested_window=suggested_window(prep.period, prep.gs.granularity),
        expected=e,
        upper_margin=float(mg.upper[-1]),
        lower_margin=float(mg.lower[-1]),
        is_anomaly=flag,
        is_positive=flag and v > e,
        is_negative=flag and v < e,
        severity=float(mg.severity[-1]),
    )


def detect_many(
    batch: Sequence[GridSeries], last: bool
) -> list[EntireOutput | LastOutput | AnomalyDetectorError]:
    """Run the model over a batch: the seasonal decompositions are computed in batched STL calls."""
    outs: list[EntireOutput | LastOutput | AnomalyDetectorError | None] = [None] * len(batch)
    preps: list[Prepared | None] = [None] * len(batch)
    for i, gs in enumerate(batch):
        try:
            preps[i] = prepare(gs)
        except AnomalyDetectorError as exc:
            outs[i] = exc
    seasonal = [(i, p) for i, p in enumerate(preps) if p is not None and p.seasonal]
    fits = decompose_many([p.x for _, p in seasonal], [p.period for _, p in seasonal], last)
    comps = {i: c for (i, _), c in zip(seasonal, fits, strict=True)}
    finish = _last_output if last else _entire_output
    for i, prep in enumerate(preps):
        if prep is None:
            continue
        try:
            outs[i] = finish(prep, run_model(prep, last, comps.get(i)))  # type: ignore[operator]
        except AnomalyDetectorError as exc:
            outs[i] = exc
    return outs  # type: ignore[return-value]
