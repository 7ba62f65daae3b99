"""The frame-agnostic half of the pandas and polars adapters: one conversion, one engine call.

An adapter reads its frame into a :class:`FrameData` (key codes, timestamps, value columns as
numpy arrays, in input row order) and hands it to :func:`run_detect`, :func:`run_last` or
:func:`run_change_points`. They

1. sort the rows by key then timestamp (:func:`sort_layout`; series *i* is
   ``sorted[offsets[i]:offsets[i+1]]``),
2. make ONE engine batch call over every series (and every value column),
3. return the result columns as numpy arrays in the input row order (:class:`Column`),

so the adapters only convert frames to arrays and back. Nothing here imports pandas or polars.

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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .engine.batch import (
    CHANGE_POINT_DEFAULTS,
    DETECT_DEFAULTS,
    detect_change_points_batch,
    detect_entire_batch,
    detect_last_batch,
)
from .engine.granularity import CALENDAR
from .engine.result import ERROR_COLUMNS as ERROR_TABLE
from .engine.result import column_attributes, column_kinds
from .errors import BadArgument

# result column -> attribute of the job's batch result (from engine/result.py's column table)
ENTIRE_COLUMNS: dict[str, str] = column_attributes("entire")
LAST_COLUMNS: dict[str, str] = column_attributes("last")
CHANGE_POINT_COLUMNS: dict[str, str] = column_attributes("change_points")
ERROR_COLUMNS = tuple(c.name for c in ERROR_TABLE)
ERRORS = ("raise", "coerce")

#: Wall-clock and CPU seconds spent inside the engine call by the last run_* call
#: (benchmarks/frames.py reads them to split an adapter call into conversion and engine time).
LAST_ENGINE_SECONDS: list[float] = [0.0, 0.0]


class _EngineClock:
    """Times the engine call into :data:`LAST_ENGINE_SECONDS`."""

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        LAST_ENGINE_SECONDS[:] = [time.perf_counter() - self.wall, time.process_time() - self.cpu]

# numpy dtype of every result column (so a lazy plan can declare its output schema up front)
COLUMN_KINDS: dict[str, str] = dict(column_kinds())


# --------------------------------------------------------------------------- column naming


def value_columns(value: str | Sequence[str]) -> tuple[list[str], bool]:
    """The value columns and whether result columns get their name as prefix (``value`` was a list).

    >>> value_columns("value"), value_columns(["a", "b"])
    ((['value'], False), (['a', 'b'], True))
    """
    if isinstance(value, str):
        return [value], False
    cols = list(value)
    if not cols or not all(isinstance(c, str) for c in cols):
        raise BadArgument(f"The 'value' argument must be a column name or a list of them, got {value!r}.")
    if len(set(cols)) != len(cols):
        raise BadArgument(f"The 'value' argument must not repeat a column, got {cols!r}.")
    return cols, True


def key_columns(by: str | Sequence[str] | None) -> list[str]:
    """The key columns named by ``by`` (none: the frame is one series)."""
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    cols = list(by)
    if not all(isinstance(c, str) for c in cols):
        raise BadArgument(f"The 'by' argument must be a column name or a list of them, got {by!r}.")
    return cols


def check_columns(frame_columns: Sequence[str], role: dict[str, list[str]]) -> None:
    """Refuse a missing column, naming the argument that asked for it."""
    present = set(frame_columns)
    for arg, cols in role.items():
        for c in cols:
            if c not in present:
                raise BadArgument(
                    f"The {arg!r} column {c!r} is not in the frame; its columns are {list(frame_columns)!r}."
                )


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


def _params(params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    unknown = set(params) - set(defaults)
    if unknown:
        raise BadArgument(f"Unknown parameter(s) {sorted(unknown)}; expected some of {sorted(defaults)}.")
    return params


def _flat_columns(
    data: FrameData, layout: Layout, res: Any, mapping: dict[str, str], errors: str
) -> list[Column]:
    """Result columns in input row order from a flat batch result (entire / change points)."""
    cols = list(data.values)
    n, k = layout.n_rows, layout.n_series
    out: list[Column] = []
    for j, vcol in enumerate(cols):
        series = slice(j * k, (j + 1) * k)
        rows = slice(j * n, (j + 1) * n)
        invalid = None
        if errors == "coerce":
            invalid = layout.per_row(~res.valid[series])
        for name, attr in mapping.items():
            arr = getattr(res, attr)
            arr = layout.per_row(arr[series]) if name == "period" else layout.scatter(arr[rows])
            out.append(Column(_name(vcol, name, data.prefixed), arr, invalid))
        if errors == "coerce":
            out.append(Column(_name(vcol, "anomaly_error_code", data.prefixed), layout.per_row(res.error_code[series]), invalid))
            out.append(Column(_name(vcol, "anomaly_error", data.prefixed), layout.per_row(res.error_message[series]), invalid))
    return out


def _name(vcol: str, name: str, prefixed: bool) -> str:
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
    with _EngineClock():
        res = detect_entire_batch(values, offsets, ts, errors=errors, keys=keys, **_params(params, DETECT_DEFAULTS))
    return _flat_columns(data, layout, res, ENTIRE_COLUMNS, errors)


def run_change_points(data: FrameData, *, errors: str = "raise", **params: Any) -> list[Column]:
    """Change-point detection of every series and value column in one engine call."""
    check_errors(errors)
    layout = data.get_layout()
    values, offsets, ts, keys = _batch_input(data, layout)
    with _EngineClock():
        res = detect_change_points_batch(
            values, offsets, ts, errors=errors, keys=keys, **_params(params, CHANGE_POINT_DEFAULTS)
        )
    return _flat_columns(data, layout, res, CHANGE_POINT_COLUMNS, errors)


def run_last(data: FrameData, *, errors: str = "raise", **params: Any) -> tuple[NDArray[np.int64], list[Column]]:
    """Last-point detection of every series in one engine call.

    Returns the input row of each series' newest point (to take keys, timestamp and values
    from) and one result column entry per series.
    """
    check_errors(errors)
    layout = data.get_layout()
    values, offsets, ts, keys = _batch_input(data, layout)
    with _EngineClock():
        res = detect_last_batch(values, offsets, ts, errors=errors, keys=keys, **_params(params, DETECT_DEFAULTS))
    k = layout.n_series
    out: list[Column] = []
    for j, vcol in enumerate(data.values):
        series = slice(j * k, (j + 1) * k)
        invalid = ~res.valid[series] if errors == "coerce" else None
        for name, attr in LAST_COLUMNS.items():
            out.append(Column(_name(vcol, name, data.prefixed), getattr(res, attr)[series], invalid))
        if errors == "coerce":
            out.append(Column(_name(vcol, "anomaly_error_code", data.prefixed), res.error_code[series], invalid))
            out.append(Column(_name(vcol, "anomaly_error", data.prefixed), res.error_message[series], invalid))
    return layout.last_rows, out


# --------------------------------------------------------------------------- input checks shared by adapters


def check_no_missing_timestamps(ts: NDArray[np.datetime64], column: str) -> None:
    """Refuse NaT timestamps naming the column and the first row."""
    nat = np.isnat(ts)
    if nat.any():
        i = int(np.flatnonzero(nat)[0])
        raise BadArgument(f"The 'timestamp' column {column!r} must not hold missing values, got one in row {i}.")


def non_numeric(column: str, dtype: Any) -> BadArgument:
    return BadArgument(f"The 'value' column {column!r} must be numeric, got dtype {dtype}.")


def non_temporal(column: str, dtype: Any) -> BadArgument:
    return BadArgument(
        f"The 'timestamp' column {column!r} must hold datetimes (or dates), got dtype {dtype}; "
        "convert it first (pandas: pd.to_datetime, polars: str.to_datetime) or pass timestamp=None."
    )


# --------------------------------------------------------------------------- the accessor shared by pandas and polars


@dataclass(frozen=True)
class Request:
    """One accessor call, before it touches a frame."""

    kind: str  # "detect" | "last" | "change_points"
    value: str | Sequence[str]
    timestamp: str | None
    by: str | Sequence[str] | None
    errors: str
    params: dict[str, Any]

    @property
    def values(self) -> list[str]:
        return value_columns(self.value)[0]

    @property
    def prefixed(self) -> bool:
        return value_columns(self.value)[1]

    @property
    def keys(self) -> list[str]:
        return key_columns(self.by)

    def result_kinds(self) -> dict[str, str]:
        """Output column name -> kind ("bool", "float", "int", "str") of the added result columns."""
        base = list({"detect": ENTIRE_COLUMNS, "last": LAST_COLUMNS, "change_points": CHANGE_POINT_COLUMNS}[self.kind])
        if self.errors == "coerce":
            base += ERROR_COLUMNS
        return {_name(v, n, self.prefixed): COLUMN_KINDS[n] for v in self.values for n in base}

    def check(self, columns: Sequence[str]) -> None:
        """Refuse unknown arguments and missing columns before reading anything."""
        check_errors(self.errors)
        defaults = CHANGE_POINT_DEFAULTS if self.kind == "change_points" else DETECT_DEFAULTS
        _params(self.params, defaults)
        role = {"value": self.values, "by": self.keys}
        if self.timestamp is not None:
            role["timestamp"] = [self.timestamp]
        check_columns(columns, role)


def run(req: Request, data: FrameData) -> tuple[NDArray[np.int64] | None, list[Column]]:
    """Run ``req`` over ``data``: ``(rows, columns)``; ``rows`` (last detect) are the input rows to keep."""
    if req.kind == "detect":
        return None, run_detect(data, errors=req.errors, **req.params)
    if req.kind == "change_points":
        return None, run_change_points(data, errors=req.errors, **req.params)
    return run_last(data, errors=req.errors, **req.params)


class AnomalyMethods:
    """``df.anomaly``: the methods of the pandas accessor and the polars namespaces.

    A subclass converts: :meth:`_apply` reads its frame into a :class:`FrameData`, calls
    :func:`run` and writes the columns back. The methods here only gather arguments.
    """

    # ---- what an adapter provides: reading columns as numpy arrays, writing columns back

    def _columns(self) -> list[str]:  # pragma: no cover - each adapter
        raise NotImplementedError

    def _n_rows(self) -> int:  # pragma: no cover
        raise NotImplementedError

    def _value_array(self, column: str) -> NDArray[np.float64]:  # pragma: no cover
        """float64 values, nulls as NaN; refuses non-numeric columns."""
        raise NotImplementedError

    def _timestamp_array(self, column: str, *, local: bool = False) -> NDArray[np.datetime64]:  # pragma: no cover
        """``datetime64[ns]``, naive: UTC, or with ``local`` a time-zone-aware column's local
        wall-clock times; refuses non-temporal columns."""
        raise NotImplementedError

    def _key_codes(self, column: str) -> tuple[NDArray[np.int64], int]:  # pragma: no cover
        """Integer codes of a key column (equal keys, equal codes; null is a key) and their count."""
        raise NotImplementedError

    def _key_value(self, column: str, row: int) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _write(self, req: Request, rows: NDArray[np.int64] | None, columns: list[Column]) -> Any:  # pragma: no cover
        """The output frame: the input (or its ``rows``, then sorted by key) plus ``columns``."""
        raise NotImplementedError

    def _first_series(self, by: str | Sequence[str] | None, n: int) -> AnomalyMethods:  # pragma: no cover
        """The accessor of a frame holding only the first ``n`` keys (sorted)."""
        raise NotImplementedError

    # ---- shared

    def _read(self, req: Request) -> FrameData:
        """The frame as numpy arrays (after checking arguments and columns)."""
        req.check(self._columns())
        values = {c: self._value_array(c) for c in req.values}
        ts = None
        if req.timestamp is not None:
            # a calendar grid (daily .. yearly) of time-zone-aware data is laid on local wall-clock
            # time, as the engine does for strings with offsets: local midnights across a DST change
            local = req.params.get("granularity") in CALENDAR
            ts = self._timestamp_array(req.timestamp, local=local)
            if req.errors == "raise":  # with "coerce" the engine refuses only the series of a missing one
                check_no_missing_timestamps(ts, req.timestamp)
        keys = req.keys
        codes = combine_codes([self._key_codes(k) for k in keys])[0] if keys else None

        def key_of_row(i: int) -> Any:
            vals = tuple(_plain(self._key_value(k, i)) for k in keys)
            return vals[0] if len(vals) == 1 else vals

        return FrameData(
            n_rows=self._n_rows(),
            codes=codes,
            timestamps=ts,
            values=values,
            key_of_row=key_of_row if keys else None,
            prefixed=req.prefixed,
        )

    def _apply(self, req: Request) -> Any:
        data = self._read(req)
        rows, columns = run(req, data)
        return self._write(req, rows, columns)

    def detect(
        self,
        value: str | Sequence[str] = "value",
        timestamp: str | None = "timestamp",
        by: str | Sequence[str] | None = None,
        *,
        granularity: str | None = None,
        custom_interval: int | None = None,
        period: int | None = None,
        sensitivity: float = 99,
        max_anomaly_ratio: float = 0.25,
        impute_mode: str = "auto",
        impute_fixed_value: float | None = None,
        boundary_version: str = "V1",
        method: str = "azure",
        errors: str = "raise",
    ) -> Any:
        """Entire-series detection of every series (one per ``by`` key): the rows plus result columns.

        Returns the input rows in their order, with their other columns, plus ``is_anomaly,
        is_positive_anomaly, is_negative_anomaly, expected_value, lower_boundary, upper_boundary,
        lower_margin, upper_margin, severity, period`` (prefixed ``<column>_`` when ``value`` is a
        list). The rows need not be sorted. All series go to the engine in one batch call.

        Parameters
        ----------
        value : str or list of str
            The value column(s); a list detects each column independently.
        timestamp : str or None
            The datetime column; ``None`` treats rows (per key, in input order) as a regular grid.
        by : str or list of str, optional
            Key column(s): one series per key; ``None``: the whole frame is one series.
        granularity, custom_interval, period, sensitivity, max_anomaly_ratio, impute_mode, impute_fixed_value, boundary_version, method
            The engine's parameters with its defaults (see :func:`ad_pipeline.detect_entire`);
            ``granularity=None`` infers it per series from its timestamps.
        errors : {"raise", "coerce"}
            ``"raise"``: the first invalid series raises (its key in the message); ``"coerce"``:
            invalid series get null results and ``anomaly_error_code`` / ``anomaly_error``.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> import ad_pipeline
        >>> ts = pd.date_range("2024-01-01", periods=48, freq="h")
        >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
        >>> df = pd.DataFrame({"timestamp": ts, "value": x})
        >>> out = df.anomaly.detect(period=4, sensitivity=95)
        >>> out.index[out["is_anomaly"]].tolist()
        [9]
        """
        params = {k: v for k, v in locals().items() if k in DETECT_DEFAULTS}  # the engine parameters
        return self._apply(Request("detect", value, timestamp, by, errors, params))

    def detect_last(
        self,
        value: str | Sequence[str] = "value",
        timestamp: str | None = "timestamp",
        by: str | Sequence[str] | None = None,
        *,
        granularity: str | None = None,
        custom_interval: int | None = None,
        period: int | None = None,
        sensitivity: float = 99,
        max_anomaly_ratio: float = 0.25,
        impute_mode: str = "auto",
        impute_fixed_value: float | None = None,
        boundary_version: str = "V1",
        method: str = "azure",
        errors: str = "raise",
    ) -> Any:
        """Last-point detection: one row per series, sorted by key.

        Each row holds the key columns, the newest timestamp and value(s) of the series and
        ``is_anomaly, is_positive_anomaly, is_negative_anomaly, expected_value, lower_boundary,
        upper_boundary, lower_margin, upper_margin, severity, period, suggested_window``.
        Arguments as in :meth:`detect`.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> import ad_pipeline
        >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 8); x[-1] = 40.0
        >>> df = pd.DataFrame({"key": "a", "timestamp": pd.date_range("2024-01-01", periods=32, freq="D"), "value": x})
        >>> df.anomaly.detect_last(by="key")[["key", "value", "is_anomaly"]].to_dict("records")
        [{'key': 'a', 'value': 40.0, 'is_anomaly': True}]
        """
        params = {k: v for k, v in locals().items() if k in DETECT_DEFAULTS}  # the engine parameters
        return self._apply(Request("last", value, timestamp, by, errors, params))

    def change_points(
        self,
        value: str | Sequence[str] = "value",
        timestamp: str | None = "timestamp",
        by: str | Sequence[str] | None = None,
        *,
        granularity: str | None = None,
        custom_interval: int | None = None,
        period: int | None = None,
        stable_trend_window: int | None = None,
        threshold: float | None = None,
        errors: str = "raise",
    ) -> Any:
        """Change-point detection: the rows plus ``is_change_point`` and ``change_point_confidence``.

        Parameters as :func:`ad_pipeline.detect_change_points`; the rest as in :meth:`detect`.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> import ad_pipeline
        >>> x = np.r_[np.zeros(100), np.full(100, 8.0)] + np.random.default_rng(1).normal(size=200)
        >>> df = pd.DataFrame({"value": x})
        >>> out = df.anomaly.change_points(timestamp=None)
        >>> out.columns.tolist()
        ['value', 'is_change_point', 'change_point_confidence']
        """
        params = {k: v for k, v in locals().items() if k in CHANGE_POINT_DEFAULTS}  # the engine parameters
        return self._apply(Request("change_points", value, timestamp, by, errors, params))

    def plot(
        self,
        value: str = "value",
        timestamp: str | None = "timestamp",
        by: str | Sequence[str] | None = None,
        *,
        max_series: int = 6,
        change_points: bool = True,
        path: Any = None,
        title: str | None = None,
        **params: Any,
    ) -> Any:
        """Plot the first ``max_series`` series (sorted by key): values, expected values, boundaries, anomalies.

        One panel per series: the value line, the expected line, the shaded boundary band,
        positive and negative anomalies in two colours and change points as vertical lines.
        ``params`` are :meth:`detect`'s parameters. Needs matplotlib (``pip install 'ad-pipeline-anomaly[plot]'``).

        Returns
        -------
        matplotlib.figure.Figure
            The figure; also saved as PNG when ``path`` is given.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> import ad_pipeline
        >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
        >>> df = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=48, freq="h"), "value": x})
        >>> fig = df.anomaly.plot(period=4)
        >>> len(fig.axes)
        1
        """
        from .plot import plot_series

        if not isinstance(value, str):
            raise BadArgument(f"The 'value' argument of plot must be one column name, got {value!r}.")
        sub = self._first_series(by, max_series) if by is not None else self
        req = Request("detect", value, timestamp, by, "coerce", params)
        data = sub._read(req)
        _, cols = run(req, data)
        results = {c.name: c.values for c in cols}
        if change_points:
            cp = run_change_points(data, errors="coerce")
            results.update({c.name: c.values for c in cp if c.name in CHANGE_POINT_COLUMNS})
        return plot_series(make_panels(data, results, value), path=path, title=title)


def _plain(x: Any) -> Any:
    """numpy scalars as Python scalars (readable in messages)."""
    return x.item() if isinstance(x, np.generic) else x


def make_panels(data: FrameData, results: dict[str, NDArray[Any]], value: str) -> list[dict[str, Any]]:
    """One :func:`ad_pipeline.plot.plot_series` panel per series, points in time order."""
    layout = data.get_layout()
    panels: list[tuple[Any, dict[str, Any]]] = []
    for i in range(layout.n_series):
        a, b = int(layout.offsets[i]), int(layout.offsets[i + 1])
        rows = np.arange(a, b) if layout.order is None else layout.order[a:b]
        key = data.key_of_row(int(rows[0])) if data.key_of_row is not None and len(rows) else None
        panel: dict[str, Any] = {
            "title": value if key is None else f"{key} · {value}",
            "timestamp": None if data.timestamps is None else data.timestamps[rows],
            "value": data.values[value][rows],
        }
        for name in ("expected_value", "lower_boundary", "upper_boundary", "is_positive_anomaly",
                     "is_negative_anomaly", "is_change_point"):
            if name in results:
                panel[name] = results[name][rows]
        err = results.get("anomaly_error")
        if err is not None and len(rows) and err[rows[0]] is not None:
            panel["error"] = err[rows[0]]
        panels.append((key, panel))
    try:  # in key order (keys of mixed types keep the order of the batch)
        panels.sort(key=lambda kp: (kp[0] is None, kp[0]))
    except TypeError:
        pass
    return [p for _, p in panels]
