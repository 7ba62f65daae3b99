"""The batch API every adapter uses: many series as flat values plus offsets.

Series *i* is ``values[offsets[i]:offsets[i+1]]`` (the layout of an Arrow ``LIST`` column).
Parameters are scalars or one value per series. The single-series functions in
:mod:`ad_pipeline.engine.api` are this batch with one series.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> values = np.concatenate([10 + rng.normal(size=48), 5 + rng.normal(size=60)])
>>> values[20] = 40.0
>>> res = detect_entire_batch(values, [0, 48, 108], sensitivity=95)
>>> res.n_series, bool(res.is_anomaly[20])
(2, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import (
    AnomalyDetectorError,
    BadArgument,
    InvalidGranularity,
    InvalidModelArgument,
    InvalidSeries,
)
from .azure.impute import MAX_SPAN
from .compiling import watch_compilation
from .granularity import CALENDAR, grid_positions, infer_granularity, parse_timestamps
from .model import EntireOutput, GridSeries, LastOutput, Model
from .params import (
    ChangePointParams,
    SeriesParams,
    check_change_point_params,
    check_params,
    expand_params,
)
from .result import ChangePointBatchResult, EntireBatchResult, LastBatchResult

MIN_POINTS = 12
MAX_ABS_VALUE = 1e100
MAX_GRID_FACTOR = 100  # a grid more than 99% missing is refused (it would also exhaust memory)
MAX_GRID_POINTS = 4_000_000  # with an explicit granularity, the grid size that is refused
ERRORS = ("raise", "coerce")

DETECT_DEFAULTS: dict[str, Any] = {
    "granularity": None,
    "custom_interval": None,
    "period": None,
    "max_anomaly_ratio": 0.25,
    "sensitivity": 99,
    "impute_mode": "auto",
    "impute_fixed_value": None,
    "boundary_version": "V1",
    "method": "azure",
}
CHANGE_POINT_DEFAULTS: dict[str, Any] = {
    "granularity": None,
    "custom_interval": None,
    "period": None,
    "stable_trend_window": None,
    "threshold": None,
}

Keys = Sequence[Any] | Callable[[int], Any] | None


# --------------------------------------------------------------------------- input checks


class _BadTimestamps:
    """The unusable timestamps of a batch (missing, unreadable, out of range): index and reason."""

    def __init__(self, index: NDArray[np.int64], reasons: list[str]) -> None:
        self.index, self.reasons = index, reasons

    def first_in(self, a: int, b: int) -> BadArgument | None:
        """The error of the first bad timestamp in ``[a, b)``, its index counted within the series."""
        j = int(np.searchsorted(self.index, a))
        if j == len(self.index) or self.index[j] >= b:
            return None
        i = int(self.index[j])
        return BadArgument(self.reasons[j].replace(f"at index {i}.", f"at index {i - a}."))


def check_batch_input(
    values: ArrayLike, offsets: ArrayLike, timestamps: ArrayLike | None
) -> tuple[
    NDArray[np.float64], NDArray[np.int64], NDArray[np.datetime64] | None, NDArray[np.datetime64] | None,
    _BadTimestamps | None,
]:
    """Flat values, offsets, timestamps (UTC) and their wall-clock times (None unless time zones came)
    as numpy arrays; refuse inconsistent layouts.

    Unusable timestamps (missing, unreadable, out of range) are returned (the last item, else
    ``None``) to refuse only their series: ``errors="coerce"`` keeps the others.
    """
    try:
        vals = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadArgument(
            f"The 'series' field must hold numeric values, got {_first_non_numeric(values)}."
        ) from None
    if vals.ndim != 1:
        raise BadArgument(f"The 'series' field must be one-dimensional, got an array of shape {vals.shape}.")
    offs = np.asarray(offsets)
    if offs.ndim != 1 or len(offs) < 1 or not np.issubdtype(offs.dtype, np.integer):
        raise BadArgument("The 'offsets' field must be a 1-d integer array starting at 0, got " f"{offs!r:.80}.")
    offs = offs.astype(np.int64)
    if offs[0] != 0 or offs[-1] != len(vals) or (np.diff(offs) < 0).any():
        down = np.flatnonzero(np.diff(offs) < 0)
        got = (
            f"offsets[{down[0] + 1}] = {offs[down[0] + 1]} after {offs[down[0]]}"
            if offs[0] == 0 and offs[-1] == len(vals)
            else f"{offs[0]} .. {offs[-1]}"
        )
        raise BadArgument(
            f"The 'offsets' field must start at 0, never decrease and end at len(values) = {len(vals)}, "
            f"got {got}."
        )
    ts = wall = None
    bad_ts = None
    if timestamps is not None:
        ts, wall, bad, reasons = parse_timestamps(timestamps)
        if ts.shape != vals.shape:
            raise BadArgument(
                f"The 'timestamps' field must hold one timestamp per value ({len(vals)}), got {len(ts)}."
            )
        if len(bad):
            bad_ts = _BadTimestamps(bad, reasons)
    return vals, offs, ts, wall, bad_ts


def _first_non_numeric(values: Any) -> str:
    """Describe the first value that is not a number (only called on the error path)."""
    try:
        flat = np.asarray(values, dtype=object).ravel()
    except (TypeError, ValueError):
        return "values of uneven length"
    for i, v in enumerate(flat):
        try:
            float(v)
        except (TypeError, ValueError):
            return f"{v!r:.40} at index {i}"
    return "values that cannot be read as numbers"


def points_only(params: SeriesParams | ChangePointParams, m: int, n_missing: int) -> bool:
    """Whether the Azure model sees only the given points, in order, of a grid of ``m`` points.

    The original fills no gap of a grid spanning more than 17,280 points and detects no period on
    a grid more than half empty (AZURE_ALGORITHM.md §5, §7): such a series (a point decades after
    the others, say) is modelled on its points alone, so the grid is never built.
    """
    return (
        isinstance(params, SeriesParams)
        and params.method == "azure"
        and m > MAX_SPAN
        and n_missing > 0.5 * m
        and (params.period or 0) <= 1
    )


def _grid_time(
    ts: NDArray[np.datetime64], wall: NDArray[np.datetime64] | None, granularity: str | None, interval: int
) -> tuple[NDArray[np.datetime64], str, int]:
    """The times a grid is laid on, with its granularity and interval (inferred when not given):
    local wall-clock times for daily, weekly, monthly and yearly grids of time-zone-aware input
    (local midnights across a DST change), UTC otherwise."""
    if wall is not None:
        if granularity is None:
            try:
                on_wall = infer_granularity(wall)
            except AnomalyDetectorError:
                on_wall = None
            if on_wall is not None and on_wall[0] in CALENDAR:
                return wall, on_wall[0], on_wall[1]
        elif granularity in CALENDAR:
            return wall, granularity, interval
    if granularity is None:
        granularity, interval = infer_granularity(ts)
    return ts, granularity, interval


def _prepare(
    values: NDArray[np.float64],
    ts: NDArray[np.datetime64] | None,
    params: SeriesParams | ChangePointParams,
    wall: NDArray[np.datetime64] | None = None,
) -> tuple[GridSeries[Any], NDArray[np.int64]]:
    """Validate one series and place it on its grid; returns the series and each point's grid index."""
    n_obs = int(np.count_nonzero(~np.isnan(values)))
    if n_obs < MIN_POINTS:
        raise InvalidSeries(
            f"The 'series' field must contain at least {MIN_POINTS} points with a value, got {n_obs}."
        )
    bad = np.abs(values) > MAX_ABS_VALUE  # NaN compares False: NaN is a missing point
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidSeries(
            f"The 'series' field values must be finite numbers within ±1e100, got {values[i]} at index {i}."
        )
    granularity, interval = params.granularity, params.custom_interval
    if ts is None:
        granularity = granularity or "none"
        pos = np.arange(len(values), dtype=np.int64)
    else:
        inferred = granularity is None
        ts, granularity, interval = _grid_time(ts, wall, granularity, interval)
        pos = grid_positions(ts, granularity, interval)
        m = int(pos[-1]) + 1
        # an explicit granularity keeps Azure's answer for sparse grids (a recorded case has 24
        # microsecond points over 23,001 grid points); only a grid that would cost far more than
        # its points is refused: beyond MAX_GRID_FACTOR per point, and for detection (which
        # models a mostly missing grid cheaply, or on its points alone: points_only) also beyond
        # MAX_GRID_POINTS
        cheap = not inferred and isinstance(params, SeriesParams)
        too_big = not cheap or (m > MAX_GRID_POINTS and not points_only(params, m, m - n_obs))
        if m > MAX_GRID_FACTOR * len(values) and too_big:
            what = (
                f"The timestamps fit no regular grid: their common step (granularity {granularity!r}, "
                f"custom_interval {interval})"
                if inferred
                else f"The 'series' field timestamps on the grid of granularity {granularity!r} with "
                f"custom_interval {interval}"
            )
            err = InvalidGranularity if inferred else InvalidSeries
            limit = (
                f"a grid of more than {MAX_GRID_POINTS} points and {MAX_GRID_FACTOR} per given point is refused"
                if cheap
                else f"at most {MAX_GRID_FACTOR} grid points per given point are allowed"
            )
            raise err(f"{what} span {m} grid points for {len(values)} points: {limit}.")
    m = int(pos[-1]) + 1
    if params.period is not None and params.period > 0 and m < 2 * params.period + 1:
        raise InvalidModelArgument(
            f"The 'series' field must hold more than 2 periods: period {params.period} needs at least "
            f"{2 * params.period + 1} points, got {m}."
        )
    n_missing = m - n_obs  # grid points without a point, and points without a value
    if isinstance(params, ChangePointParams):
        if params.stable_trend_window is not None and params.stable_trend_window > m:
            raise InvalidModelArgument(
                f"The 'stable_trend_window' field must be at most the series' {m} grid points, "
                f"got {params.stable_trend_window}."
            )
        if params.period is None and n_missing > 0.5 * m:
            # as the Azure period detection: more than half the grid missing means no period (and
            # no period search over a grid that is mostly filled-in points)
            params = replace(params, period=0)
    seasonal = isinstance(params, SeriesParams) and params.period is not None and params.period > 1
    if seasonal and n_missing > 0.5 * m:
        raise InvalidSeries(
            f"Ratio of missing points should be less than 50% for seasonal timeseries: with period "
            f"{params.period} the 'series' field needs at least {math.ceil(0.5 * m)} of its {m} grid "
            f"points, got {m - n_missing}."
        )
    if points_only(params, m, n_missing):
        assert isinstance(params, SeriesParams)
        params = replace(params, period=params.period or 0, impute_mode="notFill")
        return GridSeries(values=values, granularity=granularity, custom_interval=interval, params=params), (
            np.arange(len(values), dtype=np.int64)
        )
    if m == len(values):
        grid = values
    else:
        grid = np.full(m, np.nan)
        grid[pos] = values
    return GridSeries(values=grid, granularity=granularity, custom_interval=interval, params=params), pos


def _label(keys: Keys, i: int, n_series: int) -> str:
    if keys is None:
        return f"series {i}" if n_series > 1 else ""
    key = keys(i) if callable(keys) else keys[i]
    return f"series {key!r}"


def _with_series(err: AnomalyDetectorError, label: str) -> AnomalyDetectorError:
    if not label:
        return err
    new = type(err)(f"{err.message[:-1] if err.message.endswith('.') else err.message} ({label}).")
    new.series_label = label  # type: ignore[attr-defined]
    return new


def _run(
    kind: str,
    values: ArrayLike,
    offsets: ArrayLike,
    timestamps: ArrayLike | None,
    errors: str,
    keys: Keys,
    parameters: dict[str, Any],
) -> tuple[NDArray[np.float64], NDArray[np.int64], list[Any], list[Any], list[NDArray[np.int64] | None]]:
    """Validate everything, run the models, return per-series outputs (or errors) and grid positions."""
    if errors not in ERRORS:
        raise BadArgument(f"The 'errors' field must be one of {', '.join(ERRORS)}, got {errors!r}.")
    watch_compilation()
    vals, offs, ts, wall, bad_ts = check_batch_input(values, offsets, timestamps)
    n_series = len(offs) - 1
    known = CHANGE_POINT_DEFAULTS if kind == "change_points" else DETECT_DEFAULTS
    unknown = set(parameters) - set(known)
    if unknown:
        raise BadArgument(f"Unknown parameter(s) {sorted(unknown)}; expected some of {sorted(known)}.")
    if kind == "change_points":
        plist = expand_params(n_series, check_change_point_params, parameters, CHANGE_POINT_DEFAULTS)
    else:
        plist = expand_params(n_series, check_params, parameters, DETECT_DEFAULTS)

    outputs: list[Any] = [None] * n_series
    positions: list[NDArray[np.int64] | None] = [None] * n_series
    grids: list[GridSeries | None] = [None] * n_series
    for i in range(n_series):
        a, b = offs[i], offs[i + 1]
        p = plist[i]
        try:
            if isinstance(p, Exception):
                raise p
            if bad_ts is not None and (ts_err := bad_ts.first_in(a, b)) is not None:
                raise ts_err
            if kind == "last" and (b == a or np.isnan(vals[b - 1])):
                raise InvalidSeries("The last point of the 'series' field must have a value, got a missing value.")
            grids[i], positions[i] = _prepare(
                vals[a:b], None if ts is None else ts[a:b], p, None if wall is None else wall[a:b]
            )
        except AnomalyDetectorError as exc:
            err = _with_series(exc, _label(keys, i, n_series))
            if errors == "raise":
                raise err from None
            outputs[i] = err

    if kind == "change_points":
        from .changepoint import change_points

        todo = [i for i in range(n_series) if grids[i] is not None]
        for i, cp in zip(todo, change_points([grids[i] for i in todo]), strict=True):  # type: ignore[misc]
            outputs[i] = cp
    else:
        by_method: dict[str, list[int]] = {}
        for i in range(n_series):
            if grids[i] is not None:
                by_method.setdefault(grids[i].params.method, []).append(i)  # type: ignore[union-attr]
        for method, idx in by_method.items():
            model = get_model(method)
            run = model.entire if kind == "entire" else model.last
            for i, out in zip(idx, _run_model(run, grids, idx, keys, n_series), strict=True):
                outputs[i] = out
    for i, out in enumerate(outputs):
        if isinstance(out, AnomalyDetectorError) and grids[i] is not None:
            err = _with_series(out, _label(keys, i, n_series))
            if errors == "raise":
                raise err
            outputs[i] = err
    return vals, offs, outputs, grids, positions


def _settle_margins(
    x: NDArray[np.float64], expected: NDArray[np.float64], upper: NDArray[np.float64],
    lower: NDArray[np.float64], flags: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Margins nudged by a few ulps where rounding ``expected ± margin`` put a point on the wrong side.

    The models decide flags and margins together; adding the margin to the expected value rounds
    once more, which can leave an unflagged point a hair outside its boundary (or a flagged one a
    hair inside) when the margin is tiny next to the values (e.g. sensitivity near 100).

    >>> up, lo = _settle_margins(np.array([0.3]), np.array([0.1]), np.array([0.2]), np.array([0.0]),
    ...                          np.array([False]))
    >>> bool(0.3 <= 0.1 + up[0])
    True
    """
    with np.errstate(invalid="ignore"):
        # a margin many ulps short (a zero margin next to a value a hair away, e.g. sensitivity
        # 100) first jumps to the distance itself; the loop below settles the last rounding
        ub, lb = expected + upper, expected - lower
        above, below = x - expected, expected - x
        upper = np.where(~flags & (x > ub), np.maximum(upper, above), upper)
        upper = np.where(flags & (x > expected) & (x <= ub), np.minimum(upper, above), upper)
        lower = np.where(~flags & (x < lb), np.maximum(lower, below), lower)
        lower = np.where(flags & (x < expected) & (x >= lb), np.minimum(lower, below), lower)
    for _ in range(8):
        ub, lb = expected + upper, expected - lower
        widen_up, widen_lo = ~flags & (x > ub), ~flags & (x < lb)
        shrink_up, shrink_lo = flags & (x > expected) & (x <= ub), flags & (x < expected) & (x >= lb)
        if not (widen_up | widen_lo | shrink_up | shrink_lo).any():
            break
        step_up = np.maximum(np.spacing(np.abs(ub)), np.spacing(np.abs(upper)))
        step_lo = np.maximum(np.spacing(np.abs(lb)), np.spacing(np.abs(lower)))
        upper = np.where(widen_up, upper + step_up, np.where(shrink_up, np.maximum(upper - step_up, 0.0), upper))
        lower = np.where(widen_lo, lower + step_lo, np.where(shrink_lo, np.maximum(lower - step_lo, 0.0), lower))
    return upper, lower


def _run_model(run: Any, grids: list[GridSeries | None], idx: list[int], keys: Keys, n_series: int) -> list[Any]:
    """``run`` over the series ``idx``; an unexpected failure is re-raised naming the series it came from.

    A fault that is not an input error (a bug, a numerical library failing) stops the batch
    whatever ``errors`` says; the series are then run one by one to name the first that fails.
    """
    try:
        return list(run([grids[i] for i in idx]))
    except AnomalyDetectorError:
        raise
    except Exception as exc:
        for i in idx:
            try:
                run([grids[i]])
            except Exception as single:  # noqa: BLE001 - re-raised below with its series
                label = _label(keys, i, n_series) or "the series"
                single.add_note(f"ad_pipeline: raised while detecting {label} (index {i} of the batch)")
                raise single from None
        raise exc


def get_model(method: str) -> Model:
    """The model behind ``method`` (imported on first use)."""
    if method == "azure":
        from .azure import AZURE

        return AZURE
    if method == "auto":
        from .auto import AUTO

        return AUTO
    raise BadArgument(f"The 'method' field must be one of azure, auto, got {method!r}.")  # pragma: no cover


def _errors_arrays(outputs: list[Any]) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
    code = np.array([o.code if isinstance(o, AnomalyDetectorError) else None for o in outputs], dtype=object)
    msg = np.array([o.message if isinstance(o, AnomalyDetectorError) else None for o in outputs], dtype=object)
    return code, msg


# --------------------------------------------------------------------------- public batch API


def detect_entire_batch(
    values: ArrayLike,
    offsets: ArrayLike,
    timestamps: ArrayLike | None = None,
    *,
    errors: str = "raise",
    keys: Keys = None,
    **parameters: Any,
) -> EntireBatchResult:
    """Entire-series detection of many series in one call.

    Parameters
    ----------
    values : array of float
        All series' values, concatenated; NaN marks a missing point.
    offsets : array of int
        ``n_series + 1`` offsets: series *i* is ``values[offsets[i]:offsets[i+1]]``.
    timestamps : array of datetime64 or ISO-8601 strings, optional
        Aligned with ``values``; without them a series is a contiguous grid.
    errors : {"raise", "coerce"}
        ``"raise"`` stops at the first invalid series; ``"coerce"`` records its error
        (``error_code``/``error_message``) and goes on.
    keys : sequence or callable, optional
        Names of the series for error messages (``keys[i]`` or ``keys(i)``).
    **parameters
        ``granularity, custom_interval, period, max_anomaly_ratio, sensitivity, impute_mode,
        impute_fixed_value, boundary_version, method``: each a scalar or one value per series.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
    >>> r = detect_entire_batch(x, [0, 24], period=4, sensitivity=95)
    >>> np.flatnonzero(r.is_anomaly).tolist()
    [9]
    """
    vals, offs, outputs, grids, positions = _run("entire", values, offsets, timestamps, errors, keys, parameters)
    n = len(vals)
    expected = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    lower = np.full(n, np.nan)
    severity = np.full(n, np.nan)
    is_anom = np.zeros(n, dtype=bool)
    is_pos = np.zeros(n, dtype=bool)
    is_neg = np.zeros(n, dtype=bool)
    period = np.full(len(outputs), -1, dtype=np.int64)
    for i, out in enumerate(outputs):
        if not isinstance(out, EntireOutput):
            continue
        a, b = offs[i], offs[i + 1]
        pos = positions[i]
        assert pos is not None
        period[i] = out.period
        expected[a:b] = out.expected[pos]
        upper[a:b] = out.upper_margin[pos]
        lower[a:b] = out.lower_margin[pos]
        severity[a:b] = out.severity[pos]
        observed = ~np.isnan(vals[a:b])
        is_anom[a:b] = out.is_anomaly[pos] & observed
        is_pos[a:b] = out.is_positive[pos] & observed
        is_neg[a:b] = out.is_negative[pos] & observed
    upper, lower = _settle_margins(vals, expected, upper, lower, is_anom)
    code, msg = _errors_arrays(outputs)
    return EntireBatchResult(
        offsets=offs,
        period=period,
        expected_values=expected,
        upper_margins=upper,
        lower_margins=lower,
        upper_boundaries=expected + upper,
        lower_boundaries=expected - lower,
        is_anomaly=is_anom,
        is_positive_anomaly=is_pos,
        is_negative_anomaly=is_neg,
        severity=severity,
        error_code=code,
        error_message=msg,
    )


def detect_last_batch(
    values: ArrayLike,
    offsets: ArrayLike,
    timestamps: ArrayLike | None = None,
    *,
    errors: str = "raise",
    keys: Keys = None,
    **parameters: Any,
) -> LastBatchResult:
    """Last-point detection of many series in one call: the verdict on each series' newest point.

    Every point of a series builds the model (as the original's last detect does); to judge
    against a recent window only, pass the last ``suggested_window`` points. Parameters as in
    :func:`detect_entire_batch`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 8); x[-1] = 40.0
    >>> bool(detect_last_batch(x, [0, 32]).is_anomaly[0])
    True
    """
    vals, offs, outputs, grids, positions = _run("last", values, offsets, timestamps, errors, keys, parameters)
    k = len(outputs)
    f = {name: np.full(k, np.nan) for name in ("expected", "upper", "lower", "severity")}
    b = {name: np.zeros(k, dtype=bool) for name in ("anom", "pos", "neg")}
    period = np.full(k, -1, dtype=np.int64)
    window = np.full(k, -1, dtype=np.int64)
    for i, out in enumerate(outputs):
        if not isinstance(out, LastOutput):
            continue
        period[i], window[i] = out.period, out.suggested_window
        f["expected"][i], f["upper"][i], f["lower"][i], f["severity"][i] = (
            out.expected,
            out.upper_margin,
            out.lower_margin,
            out.severity,
        )
        b["anom"][i], b["pos"][i], b["neg"][i] = out.is_anomaly, out.is_positive, out.is_negative
    ends = offs[1:]
    last = np.full(k, np.nan)
    has = ends > offs[:-1]
    last[has] = vals[ends[has] - 1]
    f["upper"], f["lower"] = _settle_margins(last, f["expected"], f["upper"], f["lower"], b["anom"])
    code, msg = _errors_arrays(outputs)
    return LastBatchResult(
        offsets=offs,
        period=period,
        suggested_window=window,
        expected_value=f["expected"],
        upper_margin=f["upper"],
        lower_margin=f["lower"],
        upper_boundary=f["expected"] + f["upper"],
        lower_boundary=f["expected"] - f["lower"],
        is_anomaly=b["anom"],
        is_positive_anomaly=b["pos"],
        is_negative_anomaly=b["neg"],
        severity=f["severity"],
        error_code=code,
        error_message=msg,
    )


def detect_change_points_batch(
    values: ArrayLike,
    offsets: ArrayLike,
    timestamps: ArrayLike | None = None,
    *,
    errors: str = "raise",
    keys: Keys = None,
    **parameters: Any,
) -> ChangePointBatchResult:
    """Change-point detection of many series in one call.

    Parameters: ``granularity, custom_interval, period, stable_trend_window, threshold``
    (scalars or per series); the rest as in :func:`detect_entire_batch`.
    """
    vals, offs, outputs, grids, positions = _run(
        "change_points", values, offsets, timestamps, errors, keys, parameters
    )
    n = len(vals)
    is_cp = np.zeros(n, dtype=bool)
    conf = np.full(n, np.nan)
    period = np.full(len(outputs), -1, dtype=np.int64)
    for i, out in enumerate(outputs):
        if isinstance(out, AnomalyDetectorError) or out is None:
            continue
        a, b = offs[i], offs[i + 1]
        pos = positions[i]
        assert pos is not None
        p, cp, cs = out
        period[i] = p
        is_cp[a:b] = cp[pos]
        conf[a:b] = cs[pos]
    code, msg = _errors_arrays(outputs)
    return ChangePointBatchResult(
        offsets=offs, period=period, is_change_point=is_cp, confidence_scores=conf, error_code=code, error_message=msg
    )
