"""Timestamps and grids: parse, infer the granularity, place points on the grid.

A series with timestamps lives on the grid ``t0 + k * granularity * custom_interval``
(calendar months for monthly and yearly). :func:`grid_positions` returns ``k`` for every point;
gaps in ``k`` are missing points that the model imputes.

>>> import numpy as np
>>> ts = np.array(["2024-01-01T00:00", "2024-01-01T00:05", "2024-01-01T00:15"], dtype="datetime64[ns]")
>>> infer_granularity(ts)
('minutely', 5)
>>> grid_positions(ts, "minutely", 5).tolist()
[0, 1, 3]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import BadArgument, InvalidGranularity, InvalidSeries

_NS = {
    "weekly": 7 * 86_400 * 10**9,
    "daily": 86_400 * 10**9,
    "hourly": 3_600 * 10**9,
    "minutely": 60 * 10**9,
    "secondly": 10**9,
    "microsecond": 10**3,
}
_MONTHS = {"monthly": 1, "yearly": 12}

# What inference prefers, coarsest first: a step that is a whole number of a unit gets that unit.
_INFER_ORDER = ("weekly", "daily", "hourly", "minutely", "secondly", "microsecond")


def as_datetime64(timestamps: Any, *, field: str = "timestamp") -> NDArray[np.datetime64]:
    """Timestamps as ``datetime64[ns]`` (ISO-8601 strings, datetimes and datetime64 accepted).

    Time zones are converted to UTC and dropped (``"2019-08-10T00:00:00+00:00"`` works).
    """
    arr = np.asarray(timestamps)
    if np.issubdtype(arr.dtype, np.datetime64):
        wide = arr.astype("datetime64[us]")
    else:
        try:
            wide = np.array([_parse_one(t) for t in arr.ravel()], dtype="datetime64[us]").reshape(arr.shape)
        except (TypeError, ValueError) as exc:
            raise BadArgument(
                f"The {field!r} field must hold ISO-8601 timestamps or datetime64 values, got {exc}."
            ) from None
    if np.isnat(wide).any():
        i = int(np.flatnonzero(np.isnat(wide))[0])
        raise BadArgument(f"The {field!r} field must not hold missing timestamps, got NaT at index {i}.")
    outside = (wide < _NS_RANGE[0]) | (wide > _NS_RANGE[1])
    if outside.any():  # datetime64[ns] would silently wrap these around
        i = int(np.flatnonzero(outside)[0])
        raise BadArgument(
            f"The {field!r} field must hold timestamps between {_NS_RANGE[0]} and {_NS_RANGE[1]}, "
            f"got {wide.ravel()[i]} at index {i}."
        )
    return arr.astype("datetime64[ns]") if arr.dtype == np.dtype("datetime64[ns]") else wide.astype("datetime64[ns]")


_NS_RANGE = (np.datetime64("1678-01-01", "us"), np.datetime64("2262-04-11", "us"))


def _parse_one(t: Any) -> np.datetime64:
    if isinstance(t, str):
        s = t.strip()
        if s[-1:] in ("Z", "z"):
            s = s[:-1]
        # numpy parses "2019-08-10T00:00:00" but not offsets: apply them ourselves
        for sign in ("+", "-"):
            idx = s.rfind(sign)
            if idx > 10 and ":" in s[idx:] and len(s) - idx in (6,):
                hh, mm = int(s[idx + 1 : idx + 3]), int(s[idx + 4 : idx + 6])
                offset = np.timedelta64(hh * 60 + mm, "m")
                base = np.datetime64(s[:idx], "us")
                return base - offset if sign == "+" else base + offset
        return np.datetime64(s, "us")
    if hasattr(t, "tzinfo") and getattr(t, "tzinfo", None) is not None:
        import datetime as _dt

        t = t.astimezone(_dt.UTC).replace(tzinfo=None)
    return np.datetime64(t, "us")


def step_ns(granularity: str, custom_interval: int) -> int:
    """The grid step in nanoseconds (not defined for monthly/yearly)."""
    return _NS[granularity] * custom_interval


def grid_positions(ts: NDArray[np.datetime64], granularity: str, custom_interval: int) -> NDArray[np.int64]:
    """Grid index ``k`` of every timestamp; refuses unsorted, duplicated or off-grid points."""
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if granularity == "none":
        return np.arange(n, dtype=np.int64)
    if granularity in _MONTHS:
        months = ts.astype("datetime64[M]")
        within = (ts - months.astype("datetime64[ns]")).astype(np.int64)
        m = months.astype(np.int64)
        off = (m - m[0]) if n else m
        step = _MONTHS[granularity] * custom_interval
        on_grid = (off % step == 0) & (within == within[0])
        pos = off // step
    else:
        step = step_ns(granularity, custom_interval)
        delta = (ts - ts[0]).astype(np.int64)
        on_grid = delta % step == 0
        pos = delta // step
    d = np.diff(pos)
    if (d < 0).any() or (np.diff(ts.astype(np.int64)) < 0).any():
        i = int(np.flatnonzero(np.diff(ts.astype(np.int64)) < 0)[0]) + 1
        raise InvalidSeries(
            f"The 'series' field must be sorted by timestamp in ascending order, got {ts[i]} after {ts[i - 1]} at index {i}."
        )
    if (np.diff(ts.astype(np.int64)) == 0).any():
        i = int(np.flatnonzero(np.diff(ts.astype(np.int64)) == 0)[0]) + 1
        raise InvalidSeries(f"The 'series' field cannot have duplicated timestamp, got {ts[i]} twice (index {i}).")
    if not on_grid.all():
        i = int(np.flatnonzero(~on_grid)[0])
        raise InvalidSeries(
            f"The timestamps must lie on the grid of granularity {granularity!r} with custom_interval "
            f"{custom_interval} starting at {ts[0]}, got {ts[i]} at index {i}."
        )
    return pos.astype(np.int64)


def infer_granularity(ts: NDArray[np.datetime64]) -> tuple[str, int]:
    """Infer ``(granularity, custom_interval)`` from timestamps: the greatest common step.

    The step is the gcd of the differences between consecutive timestamps; calendar months are
    tried when the days vary. Raises :class:`~ad_pipeline.errors.InvalidGranularity` when no grid fits.
    """
    if len(ts) < 2:
        return "none", 1
    t = ts.astype(np.int64)
    diffs = np.diff(t)
    if (diffs <= 0).any():
        # let grid_positions report the exact problem (unsorted / duplicated)
        grid_positions(ts, "microsecond", 1)
    months = ts.astype("datetime64[M]").astype(np.int64)
    within = (ts - ts.astype("datetime64[M]").astype("datetime64[ns]")).astype(np.int64)
    if (within == within[0]).all() and (np.diff(months) > 0).all():
        g = int(np.gcd.reduce(np.diff(months)))
        if g % 12 == 0:
            return "yearly", g // 12
        if int(np.diff(t).min()) >= 28 * 86_400 * 10**9:
            return "monthly", g
    g = int(np.gcd.reduce(diffs))
    for name in _INFER_ORDER:
        unit = _NS[name]
        if g % unit == 0:
            # weekly only when the step really is whole weeks
            return name, g // unit
    raise InvalidGranularity(
        f"The timestamps fit no supported granularity: their common step is {g} ns, expected a whole number of microseconds."
    )
