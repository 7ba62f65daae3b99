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

from ..errors import BadArgument, InvalidCustomInterval, InvalidGranularity, InvalidSeries

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
    ts, bad, reasons = parse_timestamps(timestamps, field=field)
    if len(bad):
        raise BadArgument(reasons[0])
    return ts


def parse_timestamps(
    timestamps: Any, *, field: str = "timestamp"
) -> tuple[NDArray[np.datetime64], NDArray[np.int64], list[str]]:
    """Timestamps as ``datetime64[ns]``, each unusable one NaT: ``(timestamps, bad indices, reasons)``.

    A missing (NaT), unreadable or out-of-range timestamp is not an error here: the caller decides
    whether it sinks the call (:func:`as_datetime64`) or only its series (``errors="coerce"``).

    >>> ts, bad, why = parse_timestamps(["2024-01-01", "soon", "2024-01-03"])
    >>> bad.tolist(), why[0]
    ([1], "The 'timestamp' field must hold ISO-8601 timestamps or datetime64 values, got 'soon' at index 1.")
    """
    arr = np.asarray(timestamps)
    reasons: dict[int, str] = {}
    if np.issubdtype(arr.dtype, np.datetime64):
        wide = arr.astype("datetime64[us]")
    else:
        flat = arr.ravel()
        try:
            wide = np.array([_parse_one(t) for t in flat], dtype="datetime64[us]").reshape(arr.shape)
        except (TypeError, ValueError, OverflowError):  # find every bad one (only on this error path)
            parsed = np.full(len(flat), np.datetime64("NaT"), dtype="datetime64[us]")
            for i, t in enumerate(flat):
                try:
                    parsed[i] = _parse_one(t)
                except (TypeError, ValueError, OverflowError):
                    reasons[i] = (
                        f"The {field!r} field must hold ISO-8601 timestamps or datetime64 values, got {(str(t) if isinstance(t, str) else t)!r:.60} at index {i}."
                    )
            wide = parsed.reshape(arr.shape)
    nat = np.isnat(wide)
    for i in np.flatnonzero(nat).tolist():
        reasons.setdefault(i, f"The {field!r} field must not hold missing timestamps, got NaT at index {i}.")
    outside = ~nat & ((wide < _NS_RANGE[0]) | (wide > _NS_RANGE[1]))
    for i in np.flatnonzero(outside).tolist():  # datetime64[ns] would silently wrap these around
        reasons[i] = (
            f"The {field!r} field must hold timestamps between {_NS_RANGE[0]} and {_NS_RANGE[1]}, "
            f"got {wide.ravel()[i]} at index {i}."
        )
    if reasons:
        wide = np.where(outside, np.datetime64("NaT"), wide)
    ts = arr.astype("datetime64[ns]") if arr.dtype == np.dtype("datetime64[ns]") else wide.astype("datetime64[ns]")
    bad = np.array(sorted(reasons), dtype=np.int64)
    return ts, bad, [reasons[i] for i in bad.tolist()]


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
                if not (0 <= hh <= 23 and 0 <= mm <= 59 and s[idx + 3] == ":"):
                    raise ValueError(f"a UTC offset of at most 23:59, got {s[idx:]!r}")
                offset = np.timedelta64(hh * 60 + mm, "m")
                base = np.datetime64(s[:idx], "us")
                return base - offset if sign == "+" else base + offset
        return np.datetime64(s, "us")
    if hasattr(t, "tzinfo") and getattr(t, "tzinfo", None) is not None:
        import datetime as _dt

        t = t.astimezone(_dt.UTC).replace(tzinfo=None)
    return np.datetime64(t, "us")


#: the longest grid step: 2**63 - 1 ns (292 years), the largest difference of two datetime64[ns]
MAX_STEP_NS = 2**63 - 1


def max_custom_interval(granularity: str | None) -> int:
    """The largest ``custom_interval`` of a granularity: a grid step of at most 292 years.

    ``None`` and ``none`` (timestamps without a grid) get the bound of the finest unit.

    >>> max_custom_interval("hourly"), max_custom_interval("monthly")
    (2562047, 3504)
    """
    if granularity in _MONTHS:
        return 292 * 12 // _MONTHS[granularity]
    return MAX_STEP_NS // _NS.get(granularity or "microsecond", _NS["microsecond"])


def step_too_long(granularity: str | None, custom_interval: Any) -> InvalidCustomInterval:
    """The refusal of a ``custom_interval`` whose grid step exceeds :func:`max_custom_interval`."""
    return InvalidCustomInterval(
        f"The 'custom_interval' field must be a positive integer of at most {max_custom_interval(granularity)} "
        f"with granularity {granularity or 'none'!r} (a grid step of at most 292 years), got {custom_interval!r}."
    )


def step_ns(granularity: str, custom_interval: int) -> int:
    """The grid step in nanoseconds (not defined for monthly/yearly)."""
    return _NS[granularity] * custom_interval


def _check_order(ts: NDArray[np.datetime64]) -> None:
    """Refuse unsorted or duplicated timestamps (compared, never subtracted: a difference of more
    than 292 years does not fit in int64 nanoseconds)."""
    t = ts.view(np.int64)
    down = t[1:] < t[:-1]
    if down.any():
        i = int(np.flatnonzero(down)[0]) + 1
        raise InvalidSeries(
            f"The 'series' field must be sorted by timestamp in ascending order, got {ts[i]} after {ts[i - 1]} at index {i}."
        )
    same = t[1:] == t[:-1]
    if same.any():
        i = int(np.flatnonzero(same)[0]) + 1
        raise InvalidSeries(f"The 'series' field cannot have duplicated timestamp, got {ts[i]} twice (index {i}).")


def _since(t: NDArray[np.int64], t0: int) -> NDArray[np.uint64]:
    """``t - t0`` of ascending int64 nanoseconds as uint64 (exact: the span of the datetime64[ns]
    range, 584 years, fits in 64 unsigned bits but not in 63)."""
    return t.view(np.uint64) - np.uint64(t0 & 0xFFFF_FFFF_FFFF_FFFF)


def grid_positions(ts: NDArray[np.datetime64], granularity: str, custom_interval: int) -> NDArray[np.int64]:
    """Grid index ``k`` of every timestamp; refuses unsorted, duplicated or off-grid points
    (with granularity ``none`` too: the timestamps then only order the points, and must)."""
    ts = np.asarray(ts, dtype="datetime64[ns]")
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _check_order(ts)
    if granularity == "none":
        return np.arange(n, dtype=np.int64)
    if granularity in _MONTHS:
        if custom_interval > max_custom_interval(granularity):
            raise step_too_long(granularity, custom_interval)
        months = ts.astype("datetime64[M]")
        within = (ts - months.astype("datetime64[ns]")).astype(np.int64)
        off = months.astype(np.int64) - months.astype(np.int64)[0]
        step = _MONTHS[granularity] * custom_interval
        on_grid = (off % step == 0) & (within == within[0])
        pos = off // step
    else:
        step = step_ns(granularity, custom_interval)
        if step > MAX_STEP_NS:  # check_custom_interval refuses these first; never an OverflowError
            raise step_too_long(granularity, custom_interval)
        step_u = np.uint64(step)
        delta = _since(ts.view(np.int64), int(ts.view(np.int64)[0]))
        on_grid = delta % step_u == 0
        pos = (delta // step_u).astype(np.int64)
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
    ts = np.asarray(ts, dtype="datetime64[ns]")
    _check_order(ts)
    t = ts.view(np.int64)
    diffs = t[1:].view(np.uint64) - t[:-1].view(np.uint64)  # exact for ascending timestamps
    months = ts.astype("datetime64[M]").astype(np.int64)
    within = (ts - ts.astype("datetime64[M]").astype("datetime64[ns]")).astype(np.int64)
    if (within == within[0]).all() and (np.diff(months) > 0).all():
        g = int(np.gcd.reduce(np.diff(months)))
        if g % 12 == 0:
            return "yearly", g // 12
        if int(diffs.min()) >= 28 * 86_400 * 10**9:
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
