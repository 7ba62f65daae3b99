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

import datetime as _dt
import re
import warnings
from typing import Any, NamedTuple

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
#: grids laid on local wall-clock time when time zones are given (a day is a local day)
CALENDAR = ("daily", "weekly", "monthly", "yearly")

# What inference prefers, coarsest first: a step that is a whole number of a unit gets that unit.
_INFER_ORDER = ("weekly", "daily", "hourly", "minutely", "secondly", "microsecond")


#: what a string timestamp may look like (named in the refusal of one that parses in none)
ACCEPTED_FORMS = (
    "ISO-8601 (2021-12-16T04:39:32, with or without fractional seconds and a 'Z' or +hh:mm offset) or "
    ".NET general date (12/16/2021 4:39:32 AM, M/d/yyyy h:mm[:ss] with AM/PM or a 24-hour clock, or M/d/yyyy)"
)
_OFFSET_MINUTES = re.compile(r"[+-]\d{2}:?(\d{2})(?::\d{2}(?:\.\d+)?)?$")
_DOTNET = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(?:\s*([AaPp])\.?[Mm]\.?)?)?"
    r"(?:\s*(Z|[+-]\d{2}:?\d{2}))?"
)


class ParsedTimestamps(NamedTuple):
    """What :func:`parse_timestamps` read: UTC times, wall-clock times, and the unusable ones."""

    utc: NDArray[np.datetime64]  # datetime64[ns], NaT where unusable
    wall: NDArray[np.datetime64] | None  # local wall-clock times, when any timestamp carried a time zone
    bad: NDArray[np.int64]  # indices of the unusable timestamps (missing, unreadable, out of range)
    reasons: list[str]  # one refusal message per bad index


def as_datetime64(timestamps: Any, *, field: str = "timestamp") -> NDArray[np.datetime64]:
    """Timestamps as ``datetime64[ns]`` in UTC (strings, datetimes and datetime64 accepted).

    Strings are read by :func:`parse_timestamp` (ISO-8601 or .NET general dates, the forms Azure
    took); offsets and time zones are converted to UTC and dropped. The first unusable timestamp
    is refused.

    >>> as_datetime64(["2019-08-10T02:00:00+02:00", " 12/16/2021 4:39:32 PM "]).tolist()
    [1565395200000000000, 1639672772000000000]
    """
    parsed = parse_timestamps(timestamps, field=field)
    if len(parsed.bad):
        raise BadArgument(parsed.reasons[0])
    return parsed.utc


def parse_timestamps(timestamps: Any, *, field: str = "timestamp") -> ParsedTimestamps:
    """The timestamps in UTC, their local wall-clock times when any carried a time zone, and the
    unusable ones.

    The wall-clock times (``None`` for naive or UTC-only input) are what a calendar grid (daily,
    weekly, monthly, yearly) is laid on: local midnights stay midnights across DST changes.
    A missing (NaT), unreadable or out-of-range timestamp is not an error here (it is NaT, with
    its index and reason): the caller decides whether it sinks the call (:func:`as_datetime64`)
    or only its series (``errors="coerce"``).

    >>> parsed = parse_timestamps(["2024-01-01", "soon", "2024-01-03"])
    >>> parsed.bad.tolist(), parsed.reasons[0][:60]
    ([1], "The 'timestamp' field must hold timestamps as ISO-8601 (2021")
    """
    arr = np.asarray(timestamps)
    reasons: dict[int, str] = {}
    wall_us = None
    if np.issubdtype(arr.dtype, np.datetime64):
        wide = arr.astype("datetime64[us]")
    elif (fast := _parse_plain_iso(arr)) is not None:
        wide = fast
    else:
        flat = arr.ravel()
        utc = np.full(len(flat), np.datetime64("NaT"), dtype="datetime64[us]")
        offsets = np.zeros(len(flat), dtype=np.int64)  # minutes east of UTC
        for i, t in enumerate(flat):
            try:
                utc[i], offsets[i] = _parse_one(t)
            except (TypeError, ValueError, OverflowError):
                reasons[i] = (
                    f"The {field!r} field must hold timestamps as {ACCEPTED_FORMS}, "
                    f"got {(str(t) if isinstance(t, str) else t)!r:.60} at index {i}."
                )
        wide = utc.reshape(arr.shape)
        if offsets.any():
            wall_us = (utc + offsets.astype("timedelta64[m]")).reshape(arr.shape)
    nat = np.isnat(wide)
    for i in np.flatnonzero(nat).tolist():
        reasons.setdefault(i, f"The {field!r} field must not hold missing timestamps, got NaT at index {i}.")
    outside = ~nat & ((wide < _NS_RANGE[0]) | (wide > _NS_RANGE[1]))
    for i in np.flatnonzero(outside).tolist():  # datetime64[ns] would silently wrap these around
        reasons[i] = (
            f"The {field!r} field must hold timestamps between {_NS_RANGE[0]} and {_NS_RANGE[1]}, "
            f"got {wide.ravel()[i]} at index {i}."
        )
    if outside.any():
        wide = np.where(outside, np.datetime64("NaT"), wide)
        if wall_us is not None:
            wall_us = np.where(outside, np.datetime64("NaT"), wall_us)
    utc_ns = arr.astype("datetime64[ns]") if arr.dtype == np.dtype("datetime64[ns]") else wide.astype("datetime64[ns]")
    bad = np.array(sorted(reasons), dtype=np.int64)
    return ParsedTimestamps(
        utc_ns, None if wall_us is None else wall_us.astype("datetime64[ns]"), bad, [reasons[i] for i in bad.tolist()]
    )


def _parse_plain_iso(arr: NDArray[Any]) -> NDArray[np.datetime64] | None:
    """numpy's vectorised reading of naive ISO-8601 strings (most input), or None to go point by point."""
    if arr.dtype.kind != "U":
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns on offsets (it would drop them): go point by point
        try:
            return arr.astype("datetime64[us]")
        except (ValueError, TypeError, Warning):
            return None


_NS_RANGE = (np.datetime64("1678-01-01", "us"), np.datetime64("2262-04-11", "us"))


def parse_timestamp(text: str) -> tuple[np.datetime64, int]:
    """One string timestamp as ``(UTC datetime64[us], offset in minutes east of UTC)``.

    The forms Azure took: ISO-8601 with or without an offset or ``Z``, and .NET general dates
    (month first, 12-hour clock with AM/PM or 24-hour); spaces around the value are ignored.
    Raises ``ValueError`` for anything else.

    >>> t, offset = parse_timestamp("12/16/2021 4:39:32 PM ")
    >>> str(t), offset
    ('2021-12-16T16:39:32.000000', 0)
    >>> t, offset = parse_timestamp("2024-03-31T00:00:00+02:00")
    >>> str(t), offset
    ('2024-03-30T22:00:00.000000', 120)
    """
    s = text.strip()
    try:
        d = _dt.datetime.fromisoformat(s)
    except ValueError:
        d = _dt.datetime.fromisoformat(_dotnet_as_iso(s))
    if (zone := _OFFSET_MINUTES.search(s)) is not None and int(zone.group(1)) > 59:
        raise ValueError(f"a UTC offset's minutes must be 00..59, got {zone.group(0)!r}")  # Python reads -00:60 as -01:00
    offset = d.utcoffset()
    minutes = 0 if offset is None else int(offset.total_seconds() // 60)
    naive = d.replace(tzinfo=None) - (offset or _dt.timedelta(0))
    return np.datetime64(naive, "us"), minutes


def _dotnet_as_iso(s: str) -> str:
    """A .NET general date (``12/16/2021 4:39:32 AM``) as ISO-8601; ``ValueError`` if it is none."""
    m = _DOTNET.fullmatch(s)
    if m is None:
        raise ValueError(f"not a timestamp: {s!r}")
    month, day, year, hh, mm, ss, frac, ampm, zone = m.groups()
    hour = int(hh or 0)
    if ampm is not None:
        if not 1 <= hour <= 12:
            raise ValueError(f"hour {hour} with {ampm}M")
        hour = hour % 12 + (12 if ampm in "Pp" else 0)
    iso = f"{year}-{int(month):02d}-{int(day):02d}T{hour:02d}:{mm or '00'}:{ss or '00'}"
    return iso + (f".{frac}" if frac else "") + (zone or "")


def _parse_one(t: Any) -> tuple[np.datetime64, int]:
    if isinstance(t, str):
        return parse_timestamp(t)
    if isinstance(t, _dt.datetime) and t.tzinfo is not None:
        offset = t.utcoffset() or _dt.timedelta(0)
        return np.datetime64(t.replace(tzinfo=None) - offset, "us"), int(offset.total_seconds() // 60)
    return np.datetime64(t, "us"), 0


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
