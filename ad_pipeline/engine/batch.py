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

from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import AnomalyDetectorError, BadArgument, InvalidSeries
from .compiling import watch_compilation
from .model import EntireOutput, GridSeries, LastOutput, Model
from .params import (
    check_change_point_params,
    check_params,
    defaults_for,
    expand_params,
    forwards,
    is_per_series,
)
from .prepare import check_batch_input, prepare
from .result import ChangePointBatchResult, EntireBatchResult, LastBatchResult

ERRORS = ("raise", "coerce")
DETECT_DEFAULTS: dict[str, Any] = defaults_for("entire")  # the public defaults, from params.py's table
CHANGE_POINT_DEFAULTS: dict[str, Any] = defaults_for("change_points")

Keys = Sequence[Any] | Callable[[int], Any] | None


def _check_errors(errors: str) -> None:
    if errors not in ERRORS:
        raise BadArgument(f"The 'errors' field must be one of {', '.join(ERRORS)}, got {errors!r}.")


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
    _check_errors(errors)
    watch_compilation()
    vals, offs, ts, wall, bad_ts = check_batch_input(values, offsets, timestamps)
    n_series = len(offs) - 1
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
            grids[i], positions[i] = prepare(
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


def _entire_batch(
    values: ArrayLike, offsets: ArrayLike, timestamps: ArrayLike | None, *, errors: str, keys: Keys,
    params: dict[str, Any],
) -> EntireBatchResult:
    """The body of :func:`detect_entire_batch`."""
    vals, offs, outputs, grids, positions = _run("entire", values, offsets, timestamps, errors, keys, params)
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


def _last_batch(
    values: ArrayLike, offsets: ArrayLike, timestamps: ArrayLike | None, *, window: int | str | None,
    window_groups: ArrayLike | None, errors: str, keys: Keys, params: dict[str, Any],
) -> LastBatchResult:
    """The body of :func:`detect_last_batch`: each newest point judged against its last ``window`` points.

    ``"suggested"``: a series is first judged on all its points (that gives its ``suggested_window``,
    or all points when it is invalid), then again on its last ``suggested_window`` points where that
    is fewer; the other series keep their first verdict.
    """
    _check_errors(errors)
    if window is None:
        return _last_once(values, offsets, timestamps, errors=errors, keys=keys, params=params)
    if window == "suggested":
        whole = _last_once(values, offsets, timestamps, errors="coerce", keys=keys, params=params)
        offs = whole.offsets
        lens = np.diff(offs)
        suggested = _group_max(whole.suggested_window, window_groups)
        keep = np.minimum(lens, np.where(suggested > 0, suggested, lens))
        redo = np.flatnonzero((keep < lens) | ~whole.valid)  # invalid ones again, so errors= decides
    else:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise BadArgument(f"The 'window' field must be 'suggested', a positive integer or None, got {window!r}.")
        _, offs, _, _, _ = check_batch_input(values, offsets, None)
        lens = np.diff(offs)
        keep, redo, whole = np.minimum(lens, int(window)), np.arange(len(lens)), None
    if not len(redo):
        return whole  # type: ignore[return-value]
    ends = offs[1:][redo]
    rows = np.repeat(ends - keep[redo], keep[redo]) + (
        np.arange(int(keep[redo].sum())) - np.repeat(np.cumsum(keep[redo]) - keep[redo], keep[redo])
    )
    n_series = len(lens)
    part = _last_once(
        np.asarray(values)[rows],
        np.concatenate([[0], np.cumsum(keep[redo])]).astype(np.int64),
        None if timestamps is None else np.asarray(timestamps)[rows],
        errors=errors,
        keys=_sub_keys(keys, redo, n_series),
        params={k: np.asarray(v, dtype=object)[redo] if is_per_series(v) else v for k, v in params.items()},
    )
    if whole is None:
        return replace(part, offsets=offs)
    merged = {}
    for f in fields(LastBatchResult):
        if f.name != "offsets":
            merged[f.name] = getattr(whole, f.name).copy()
            merged[f.name][redo] = getattr(part, f.name)
    return LastBatchResult(offsets=offs, **merged)


def _group_max(suggested: NDArray[np.int64], groups: ArrayLike | None) -> NDArray[np.int64]:
    """Each series' suggested window, the largest of its group when ``groups`` are given."""
    if groups is None:
        return suggested
    g = np.asarray(groups)
    if g.shape != suggested.shape:
        raise BadArgument(
            f"The 'window_groups' field must hold one group per series ({len(suggested)}), got {g.size} values."
        )
    _, codes = np.unique(g, return_inverse=True)
    top = np.full(int(codes.max()) + 1 if len(codes) else 0, -1, dtype=np.int64)
    np.maximum.at(top, codes, suggested)
    return top[codes]


def _sub_keys(keys: Keys, idx: NDArray[np.int64], n_series: int) -> Keys:
    """The series names of the sub-batch ``idx`` as the whole batch names them (``series 3``)."""
    if keys is None:
        return None if n_series == 1 else (lambda j: int(idx[j]))
    return (lambda j: keys(int(idx[j]))) if callable(keys) else [keys[int(i)] for i in idx]


def _last_once(
    values: ArrayLike, offsets: ArrayLike, timestamps: ArrayLike | None, *, errors: str, keys: Keys,
    params: dict[str, Any],
) -> LastBatchResult:
    """Last-point detection of every series on all its points."""
    vals, offs, outputs, grids, positions = _run("last", values, offsets, timestamps, errors, keys, params)
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


def _change_points_batch(
    values: ArrayLike, offsets: ArrayLike, timestamps: ArrayLike | None, *, errors: str, keys: Keys,
    params: dict[str, Any],
) -> ChangePointBatchResult:
    """The body of :func:`detect_change_points_batch`."""
    vals, offs, outputs, grids, positions = _run(
        "change_points", values, offsets, timestamps, errors, keys, params
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


# --------------------------------------------------------------------------- public batch API

@forwards("entire", _entire_batch, per_series=True)
def detect_entire_batch(
    values: ArrayLike,
    offsets: ArrayLike,
    timestamps: ArrayLike | None = None,
    *,
    errors: str = "raise",
    keys: Keys = None,
    granularity: str | None | ArrayLike = None,
    custom_interval: int | None | ArrayLike = None,
    period: int | None | ArrayLike = None,
    max_anomaly_ratio: float | ArrayLike = 0.25,
    sensitivity: float | ArrayLike = 99,
    impute_mode: str | ArrayLike = "auto",
    impute_fixed_value: float | None | ArrayLike = None,
    boundary_version: str | ArrayLike = "V1",
    method: str | ArrayLike = "azure",
) -> EntireBatchResult:
    """Entire-series detection of many series in one call.

    Each model parameter is a scalar or one value per series (a list or 1-d array).

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

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
    >>> r = detect_entire_batch(x, [0, 24], period=4, sensitivity=95)
    >>> np.flatnonzero(r.is_anomaly).tolist()
    [9]
    """
    raise NotImplementedError("@forwards calls _entire_batch")


@forwards("last", _last_batch, per_series=True)
def detect_last_batch(
    values: ArrayLike,
    offsets: ArrayLike,
    timestamps: ArrayLike | None = None,
    *,
    window: int | str | None = None,
    window_groups: ArrayLike | None = None,
    errors: str = "raise",
    keys: Keys = None,
    granularity: str | None | ArrayLike = None,
    custom_interval: int | None | ArrayLike = None,
    period: int | None | ArrayLike = None,
    max_anomaly_ratio: float | ArrayLike = 0.25,
    sensitivity: float | ArrayLike = 99,
    impute_mode: str | ArrayLike = "auto",
    impute_fixed_value: float | None | ArrayLike = None,
    boundary_version: str | ArrayLike = "V1",
    method: str | ArrayLike = "azure",
) -> LastBatchResult:
    """Last-point detection of many series in one call: the verdict on each series' newest point.

    Arguments as in :func:`detect_entire_batch`, plus ``window``.

    Parameters
    ----------
    values, offsets, timestamps, errors, keys
        As in :func:`detect_entire_batch`.
    window : None, "suggested" or int
        The points each newest point is judged against: ``None``, all given points (as the
        original's last detect); ``"suggested"``, the last ``suggested_window`` points of the series
        (its verdict on all its points gives that window; an invalid series keeps all its points);
        an integer, the last ``window`` points. Fewer points than the window: all of them.
    window_groups : array, optional
        One label per series: with ``window="suggested"``, series of one group share the largest
        suggested window among them (e.g. the value columns of one key judged on the same rows).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 8); x[-1] = 40.0
    >>> bool(detect_last_batch(x, [0, 32]).is_anomaly[0])
    True
    """
    raise NotImplementedError("@forwards calls _last_batch")


@forwards("change_points", _change_points_batch, per_series=True)
def detect_change_points_batch(
    values: ArrayLike,
    offsets: ArrayLike,
    timestamps: ArrayLike | None = None,
    *,
    errors: str = "raise",
    keys: Keys = None,
    granularity: str | None | ArrayLike = None,
    custom_interval: int | None | ArrayLike = None,
    period: int | None | ArrayLike = None,
    stable_trend_window: int | None | ArrayLike = None,
    threshold: float | None | ArrayLike = None,
) -> ChangePointBatchResult:
    """Change-point detection of many series in one call.

    Each model parameter is a scalar or one value per series (a list or 1-d array).

    Parameters
    ----------
    values, offsets, timestamps, errors, keys
        As in :func:`detect_entire_batch`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros(100), np.full(100, 8.0), np.zeros(100)] + np.random.default_rng(1).normal(size=300)
    >>> r = detect_change_points_batch(x, [0, 200, 300])
    >>> np.flatnonzero(r.is_change_point).tolist()
    [100]
    """
    raise NotImplementedError("@forwards calls _change_points_batch")
