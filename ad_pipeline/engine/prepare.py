"""One batch's input checked, and each series placed on its grid (what the batch driver runs first).

:func:`check_batch_input` refuses inconsistent layouts of the whole batch; :func:`prepare` validates
one series and lays it on its regular grid (missing grid points are NaN).
"""

from __future__ import annotations

import math
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
from .granularity import CALENDAR, grid_positions, infer_granularity, parse_timestamps
from .model import GridSeries
from .params import ChangePointParams, SeriesParams

MIN_POINTS = 12
MAX_ABS_VALUE = 1e100
MAX_GRID_FACTOR = 100  # a grid more than 99% missing is refused (it would also exhaust memory)
MAX_GRID_POINTS = 4_000_000  # with an explicit granularity, the grid size that is refused

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


def prepare(
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


