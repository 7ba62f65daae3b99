"""Rows -> series -> rows: the layout every adapter uses to hand many series to the engine at once.

A table of rows (a frame, an Arrow table, a warehouse scan) becomes a :class:`FrameData` (key
codes, timestamps, value columns as numpy arrays, in input row order). :func:`run_detect`,
:func:`run_last` and :func:`run_change_points` then

1. sort the rows by key then timestamp (:func:`sort_layout`; series *i* is
   ``sorted[offsets[i]:offsets[i+1]]``),
2. make ONE engine batch call over every series (and every value column),
3. return the result columns as numpy arrays in the input row order (:class:`Column`),

so an adapter only converts its table to arrays and back. numpy only.

>>> import numpy as np
>>> codes = np.array([1, 0, 1, 0])
>>> ts = np.array([10, 20, 5, 7])
>>> lay = sort_layout(codes, ts)
>>> lay.order.tolist(), lay.offsets.tolist()
([3, 1, 2, 0], [0, 2, 4])
>>> lay.scatter(np.array([1.0, 2.0, 3.0, 4.0])).tolist()  # back to the input rows
[4.0, 2.0, 3.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import BadArgument
from .batch import (
    CHANGE_POINT_DEFAULTS,
    DETECT_DEFAULTS,
    detect_change_points_batch,
    detect_entire_batch,
    detect_last_batch,
)
from .result import columns_for

ERRORS = ("raise", "coerce")


def check_errors(errors: str) -> None:
    if errors not in ERRORS:
        raise BadArgument(f"The 'errors' argument must be one of {', '.join(ERRORS)}, got {errors!r}.")


# --------------------------------------------------------------------------- codes and layout


def dense_codes(values: NDArray[Any]) -> tuple[NDArray[np.int64], int]:
    """Non-negative integer codes below ``k`` of an integer array (equal values, equal codes), and ``k``.

    Small ranges are shifted (``v - min``); wide ones are renumbered ``0 .. k-1``.

    >>> dense_codes(np.array([7, 3, 7]))
    (array([4, 0, 4]), 5)
    >>> dense_codes(np.array([10**15, -4, 10**15]))[0].tolist()
    [1, 0, 1]
    """
    v = np.asarray(values)
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64), 0
    lo, hi = int(v.min()), int(v.max())
    if hi - lo <= 4 * len(v) + 1024:
        return (v.astype(np.int64) - lo), hi - lo + 1
    uniq, inv = np.unique(v, return_inverse=True)
    return inv.astype(np.int64), len(uniq)


def combine_codes(parts: Sequence[tuple[NDArray[np.int64], int]]) -> tuple[NDArray[np.int64], int]:
    """One code per row from the codes of several key columns (``(codes, n_codes)`` each)."""
    codes, n = parts[0]
    codes = codes.astype(np.int64, copy=False)
    for c, k in parts[1:]:
        if n * k >= 2**62:  # re-number the combined codes densely first (n becomes <= the row count)
            uniq, inv = np.unique(codes, return_inverse=True)
            codes, n = inv.astype(np.int64), len(uniq)
        codes, n = codes * k + c, n * k
    return codes, n


@dataclass(frozen=True)
class Layout:
    """Where every input row goes: series *i* is ``order[offsets[i]:offsets[i+1]]`` (input rows).

    ``order`` is ``None`` when the input already is in key/timestamp order (nothing to move).
    """

    n_rows: int
    order: NDArray[np.int64] | None
    offsets: NDArray[np.int64]
    sorted_timestamps: NDArray[np.datetime64] | None = None  # the timestamps in sorted order, if any

    @property
    def n_series(self) -> int:
        return len(self.offsets) - 1

    @property
    def first_rows(self) -> NDArray[np.int64]:
        """The input row of each series' first (earliest) point."""
        start = self.offsets[:-1]
        return start if self.order is None else self.order[start]

    @property
    def last_rows(self) -> NDArray[np.int64]:
        """The input row of each series' last (newest) point."""
        end = self.offsets[1:] - 1
        return end if self.order is None else self.order[end]

    def gather(self, a: NDArray[Any]) -> NDArray[Any]:
        """Input-ordered array -> sorted order."""
        return a if self.order is None else a.take(self.order)

    def scatter(self, a: NDArray[Any]) -> NDArray[Any]:
        """Sorted array -> input row order."""
        if self.order is None:
            return a
        out = np.empty_like(a)
        out[self.order] = a
        return out

    def per_row(self, per_series: NDArray[Any]) -> NDArray[Any]:
        """A per-series array repeated over each series' rows, in input row order."""
        return self.scatter(np.repeat(per_series, np.diff(self.offsets)))


_NAT = int(np.datetime64("NaT", "ns").view(np.int64))


def sort_layout(codes: NDArray[Any] | None, timestamps: NDArray[Any] | None, n_rows: int | None = None) -> Layout:
    """Sort rows by key code, then timestamp, stably (equal keys keep their input order).

    ``codes`` are non-negative integer key codes (``None``: one series); ``timestamps`` are
    ``datetime64[ns]`` (``None``: keep the input order within a series). An input that is
    already sorted is not moved (``order`` is ``None``).

    The fast path packs ``(code, timestamp step, row)`` into one int64 per row and sorts the
    values (several times faster than an argsort, and stable by construction); the timestamps
    are counted in their common step (5-minute data: 0, 1, 2 ...) so that the three fit.
    """
    if codes is None and timestamps is None:
        n = int(n_rows or 0)
        return Layout(n, None, np.array([0, n], dtype=np.int64))
    c = None if codes is None else np.asarray(codes).astype(np.int64, copy=False)
    ts = None if timestamps is None else np.asarray(timestamps).astype("datetime64[ns]", copy=False).view(np.int64)
    n = len(c) if c is not None else len(ts)  # type: ignore[arg-type]
    if n == 0:
        return Layout(0, None, np.zeros(1, dtype=np.int64))
    n_codes = 1 if c is None else int(c.max()) + 1
    # the timestamp in units of the common step of all timestamps
    t0, step, span, packable = 0, 1, 1, True
    if ts is not None:
        t0, t1 = int(ts.min()), int(ts.max())
        # NaT (int64 min, a missing timestamp) or a span beyond int64 (over 292 years): the
        # differences below would wrap around, so those sort by comparison (lexsort) instead
        packable = t0 != _NAT and t1 - t0 < 2**63
        if packable:
            step = int(np.gcd.reduce(ts - t0)) or 1
            span = (t1 - t0) // step + 1
    row_bits = max(int(n - 1).bit_length(), 1)
    if packable and n_codes * span < 2 ** (63 - row_bits):
        primary = np.zeros(n, dtype=np.int64) if ts is None else ts - t0
        if step > 1:
            primary //= step
        if c is not None and n_codes > 1:
            primary += c * span
        primary <<= row_bits
        key = primary | np.arange(n, dtype=np.int64)
        del primary
        if (key[1:] > key[:-1]).all():
            return _layout(n, None, c, ts)
        key.sort()
        order = key & ((1 << row_bits) - 1)
        key >>= row_bits  # code * span + t, in sorted order
        sorted_codes = None if c is None else key // span
        sorted_ts = None if ts is None else (key % span if c is not None else key) * step + t0
        return _layout(n, order, sorted_codes, sorted_ts)
    if ts is not None and c is not None:
        order = np.lexsort((ts, c))
    else:
        only = ts if ts is not None else c
        assert only is not None  # both None returned above
        order = np.argsort(only, kind="stable")
    if (order[1:] > order[:-1]).all():
        return _layout(n, None, c, ts)
    return _layout(n, order, None if c is None else c[order], None if ts is None else ts[order])


def _layout(
    n: int, order: NDArray[np.int64] | None, sorted_codes: NDArray[np.int64] | None, sorted_ts: NDArray[np.int64] | None
) -> Layout:
    if sorted_codes is None:
        offsets = np.array([0, n], dtype=np.int64)
    else:
        starts = np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1
        offsets = np.concatenate(([0], starts, [n])).astype(np.int64)
    ts = None if sorted_ts is None else sorted_ts.view("datetime64[ns]")
    return Layout(n, None if order is None else order.astype(np.int64, copy=False), offsets, ts)


# --------------------------------------------------------------------------- running the engine


@dataclass
class FrameData:
    """A frame read into numpy arrays (input row order), as the adapters hand it over.

    ``codes`` identify the series of each row (``None``: one series); ``key_of_row(i)`` gives the
    key of input row ``i`` for error messages; ``values`` maps each value column to float64
    values (NaN = missing); ``timestamps`` are ``datetime64[ns]`` or ``None``.
    """

    n_rows: int
    codes: NDArray[np.int64] | None
    timestamps: NDArray[np.datetime64] | None
    values: dict[str, NDArray[np.float64]]
    key_of_row: Callable[[int], Any] | None = None
    prefixed: bool = False
    layout: Layout | None = field(default=None, repr=False)

    def get_layout(self) -> Layout:
        if self.layout is None:
            self.layout = sort_layout(self.codes, self.timestamps, self.n_rows)
        return self.layout


@dataclass(frozen=True)
class Column:
    """One result column: values and (for ``errors="coerce"``) a null mask (True = null)."""

    name: str
    values: NDArray[Any]
    mask: NDArray[np.bool_] | None = None


def _batch_input(
    data: FrameData, layout: Layout
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.datetime64] | None, Callable[[int], Any] | None]:
    """All value columns, sorted, as one flat batch (column after column), plus series keys."""
    cols = list(data.values)
    k = layout.n_series
    if len(cols) == 1:
        values = layout.gather(data.values[cols[0]])
        offsets = layout.offsets
        ts = None if data.timestamps is None else layout.sorted_timestamps
    else:
        values = np.concatenate([layout.gather(data.values[c]) for c in cols])
        offsets = np.concatenate([layout.offsets[:-1] + j * layout.n_rows for j in range(len(cols))] + [[len(values)]])
        sorted_ts = layout.sorted_timestamps
        ts = None if sorted_ts is None else np.tile(sorted_ts, len(cols))
    first = layout.first_rows
    key_of_row = data.key_of_row

    def key(i: int) -> Any:
        base = key_of_row(int(first[i % k])) if key_of_row is not None else None
        if len(cols) == 1:
            return base
        col = cols[i // k]
        if base is None:
            return col
        return (*base, col) if isinstance(base, tuple) else (base, col)

    keys = key if (key_of_row is not None or len(cols) > 1) else None
    return values, offsets.astype(np.int64), ts, keys


def check_params(params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    unknown = set(params) - set(defaults)
    if unknown:
        raise BadArgument(f"Unknown parameter(s) {sorted(unknown)}; expected some of {sorted(defaults)}.")
    return params


def _flat_columns(data: FrameData, layout: Layout, res: Any, job: str, errors: str) -> list[Column]:
    """Result columns (engine/result.py's table) in input row order from a flat batch result (entire / change points)."""
    cols = list(data.values)
    n, k = layout.n_rows, layout.n_series
    out: list[Column] = []
    for j, vcol in enumerate(cols):
        series = slice(j * k, (j + 1) * k)
        rows = slice(j * n, (j + 1) * n)
        invalid = layout.per_row(~res.valid[series]) if errors == "coerce" else None
        for c in columns_for(job, errors=errors == "coerce"):
            arr = getattr(res, c.attribute_for(job))
            arr = layout.per_row(arr[series]) if c.per_series else layout.scatter(arr[rows])
            out.append(Column(column_name(vcol, c.name, data.prefixed), arr, invalid))
    return out


def column_name(vcol: str, name: str, prefixed: bool) -> str:
    return f"{vcol}_{name}" if prefixed else name


def run_detect(data: FrameData, *, errors: str = "raise", **params: Any) -> list[Column]:
    """Entire detection of every series and value column in one engine call; columns in input row order.

    >>> import numpy as np
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
    >>> data = FrameData(n_rows=48, codes=np.repeat([0, 1], 24), timestamps=None, values={"v": x})
    >>> cols = {c.name: c.values for c in run_detect(data, period=4, sensitivity=95)}
    >>> np.flatnonzero(cols["is_anomaly"]).tolist()
    [9]
    """
    check_errors(errors)
    layout = data.get_layout()
    values, offsets, ts, keys = _batch_input(data, layout)
    res = detect_entire_batch(values, offsets, ts, errors=errors, keys=keys, **check_params(params, DETECT_DEFAULTS))
    return _flat_columns(data, layout, res, "entire", errors)


def run_change_points(data: FrameData, *, errors: str = "raise", **params: Any) -> list[Column]:
    """Change-point detection of every series and value column in one engine call."""
    check_errors(errors)
    layout = data.get_layout()
    values, offsets, ts, keys = _batch_input(data, layout)
    res = detect_change_points_batch(values, offsets, ts, errors=errors, keys=keys, **check_params(params, CHANGE_POINT_DEFAULTS))
    return _flat_columns(data, layout, res, "change_points", errors)


def run_last(
    data: FrameData, *, errors: str = "raise", window: int | str | None = None, **params: Any
) -> tuple[NDArray[np.int64], list[Column]]:
    """Last-point detection of every series in one engine call.

    Returns the input row of each series' newest point (to take keys, timestamp and values
    from) and one result column entry per series. ``window`` as :func:`detect_last_batch`'s; with
    several value columns a key's columns share the largest suggested window.
    """
    check_errors(errors)
    layout = data.get_layout()
    values, offsets, ts, keys = _batch_input(data, layout)
    k = layout.n_series
    groups = np.tile(np.arange(k), len(data.values)) if len(data.values) > 1 else None
    res = detect_last_batch(values, offsets, ts, window=window, window_groups=groups, errors=errors, keys=keys,
                            **check_params(params, DETECT_DEFAULTS))
    out: list[Column] = []
    for j, vcol in enumerate(data.values):
        series = slice(j * k, (j + 1) * k)
        invalid = ~res.valid[series] if errors == "coerce" else None
        for c in columns_for("last", errors=errors == "coerce"):
            out.append(Column(column_name(vcol, c.name, data.prefixed), getattr(res, c.attribute_for("last"))[series], invalid))
    return layout.last_rows, out
