"""The vectorized Arrow UDFs behind ``anomaly_detect_list`` & co. (the macros of ``sql/``).

DuckDB hands a UDF a chunk of up to 2048 rows (series) as Arrow list columns; the UDF makes ONE
engine batch call for all of them, converting the list column's flat values and offsets directly
(no Python per row or per point). Each UDF takes ``(values, timestamps, key, <the job's
parameters from engine/params.py's table, in its order>, errors)``; a parameter NULL everywhere
means the engine's default, a constant one is passed as a scalar, others one value per series.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..engine.params import params_for
from ..engine.result import column_kinds, columns_for
from ..errors import AnomalyDetectorError, BadArgument, error_from_code
from .common import require_pyarrow

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

__all__ = ["register_udfs", "UDF_PARAMS"]

#: parameters of the UDFs after (values, timestamps, key), in order, with their SQL types
UDF_PARAMS: dict[str, tuple[tuple[str, str], ...]] = {
    kind: tuple((p.name, p.sql_type) for p in params_for(kind)) for kind in ("entire", "last", "change_points")
}

_SQL_TYPES = {"bool": "BOOLEAN", "float": "DOUBLE", "int": "INTEGER", "str": "VARCHAR"}
_KINDS = column_kinds()


def _struct_sql(names: list[str]) -> str:
    return "STRUCT(" + ", ".join(f"{n} {_SQL_TYPES[_KINDS[n]]}" for n in names) + ")"


class _ListInput:
    """A chunk of list rows as the engine's flat layout: rows that are NULL are left out."""

    def __init__(self, values: Any, timestamps: Any, coerce: bool = False) -> None:
        pa = require_pyarrow()
        vals = _combine(values)
        n_rows = len(vals)
        self.n_rows = n_rows
        self.row_valid = np.ones(n_rows, dtype=bool)
        if vals.null_count:
            self.row_valid = np.asarray(vals.is_valid(), dtype=bool)
        self.valid_rows = np.flatnonzero(self.row_valid)
        vals = vals.filter(pa.array(self.row_valid)) if vals.null_count else vals
        self.list_type = type(vals)
        self.values, self.offsets = _flat(vals)
        self.values = np.asarray(self.values.to_numpy(zero_copy_only=False), dtype=np.float64)
        self.timestamps: NDArray[np.datetime64] | None = None
        if timestamps is not None:
            ts = _combine(timestamps)
            if ts.null_count == len(ts):
                return
            ts = ts if self.row_valid.all() else ts.filter(pa.array(self.row_valid))
            no_ts = ~np.asarray(ts.is_valid(), dtype=bool) if ts.null_count else None
            if no_ts is not None and not coerce:
                raise BadArgument(
                    "The 'timestamps' list must be given for every series of a call or for none, got NULL for some."
                )
            flat_ts, ts_offsets = _flat(ts)
            lengths = np.diff(self.offsets)
            differ = np.diff(ts_offsets) != lengths
            if no_ts is not None:
                differ &= ~no_ts
            if differ.any():
                i = int(np.flatnonzero(differ)[0])
                raise BadArgument(
                    "The 'timestamps' list must hold one timestamp per value, got "
                    f"{ts_offsets[i + 1] - ts_offsets[i]} timestamps for {lengths[i]} values."
                )
            if not pa.types.is_timestamp(flat_ts.type):
                flat_ts = flat_ts.cast(pa.timestamp("us"))
            flat = flat_ts.to_numpy(zero_copy_only=False)
            if no_ts is not None:  # coerce: a series without timestamps gets missing ones (refused alone)
                take = np.repeat(ts_offsets[:-1] - self.offsets[:-1], lengths) + np.arange(len(self.values))
                has = np.repeat(~no_ts, lengths)
                flat = np.where(has, flat[np.where(has, take, 0)] if len(flat) else np.datetime64("NaT"),
                                np.datetime64("NaT"))  # fmt: skip
            self.timestamps = flat

    @property
    def lengths(self) -> NDArray[np.int64]:
        return np.diff(self.offsets)

    def wrap_flat(self, struct: Any) -> Any:
        """A list column aligned with the input rows from a flat struct array of the valid rows."""
        pa = require_pyarrow()
        if self.row_valid.all():
            return self.list_type.from_arrays(pa.array(self.offsets), struct)
        lengths = np.zeros(self.n_rows, dtype=np.int64)
        lengths[self.valid_rows] = self.lengths
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        return self.list_type.from_arrays(pa.array(offsets), struct, mask=pa.array(~self.row_valid))

    def wrap_rows(self, struct: Any) -> Any:
        """A column aligned with the input rows from one struct per valid row (NULL rows stay NULL)."""
        pa = require_pyarrow()
        if self.row_valid.all():
            return struct
        idx = np.zeros(self.n_rows, dtype=np.int64)
        idx[self.valid_rows] = np.arange(len(self.valid_rows))
        return struct.take(pa.array(idx, mask=~self.row_valid))


def _combine(a: Any) -> Any:
    return a.combine_chunks() if hasattr(a, "combine_chunks") else a


def _flat(lists: Any) -> tuple[Any, NDArray[np.int64]]:
    """The flat child values of a list array (its slice only) and offsets starting at 0."""
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    start = int(offsets[0])
    return lists.values.slice(start, int(offsets[-1]) - start), offsets - start


def _param(column: Any, valid: NDArray[np.bool_]) -> Any:
    """A parameter column as the engine wants it: a scalar if constant, else one value per series.

    Returns ``_DEFAULT`` when the parameter is NULL everywhere (the engine's default applies).
    """
    arr = _combine(column)
    if arr.null_count == len(arr):
        return _DEFAULT
    uniq = arr.unique()
    if len(uniq) == 1 and not arr.null_count:
        return uniq[0].as_py()
    rows = arr.to_pylist()
    return [rows[i] for i in np.flatnonzero(valid)]


_DEFAULT = object()


def _engine_params(
    names: tuple[tuple[str, str], ...], columns: tuple[Any, ...], valid: NDArray[np.bool_]
) -> dict[str, Any]:
    out = {}
    for (name, _), col in zip(names, columns, strict=True):
        v = _param(col, valid)
        if v is not _DEFAULT:
            out[name] = v
    return out


def _errors_mode(column: Any) -> str:
    v = _param(column, np.ones(len(column), dtype=bool))
    if v is _DEFAULT:
        return "raise"
    if v not in ("raise", "coerce"):
        raise BadArgument(f"The 'errors' argument must be one of raise, coerce, got {v!r}.")
    return str(v)


def _keys(column: Any, valid_rows: NDArray[np.int64]) -> Callable[[int], Any] | None:
    if column is None:
        return None
    arr = _combine(column)
    if arr.null_count == len(arr):
        return None
    return lambda i: arr[int(valid_rows[i])].as_py()


def _engine_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Re-raise engine errors as the class named by their code, so SQL shows ``Code: message``."""

    @functools.wraps(fn)
    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except AnomalyDetectorError as exc:
            raise error_from_code(exc.code, exc.message) from None

    return wrapped


def _run_udf(kind: str, values: Any, timestamps: Any, key: Any, params: tuple[Any, ...], errors: Any) -> Any:
    """The body of every UDF: list chunk -> one engine batch call -> list (or struct) chunk."""
    mode = _errors_mode(errors)
    inp = _ListInput(values, timestamps, coerce=mode == "coerce")
    names = UDF_PARAMS[kind]
    from ..arrow import KINDS, detect_arrow  # pyarrow is imported when a UDF runs, not with the module

    struct = detect_arrow(
        kind, inp.values, inp.offsets, inp.timestamps, errors=mode,
        keys=_keys(key, inp.valid_rows), **_engine_params(names, params, inp.row_valid),
    )  # fmt: skip
    return inp.wrap_flat(struct) if KINDS[kind][2] else inp.wrap_rows(struct)


def _udf(kind: str) -> Callable[..., Any]:
    """The UDF of ``kind``: ``(values, timestamps, key, *parameters, errors)``, its arity fixed by a
    signature built from the parameter table (DuckDB counts the Python function's parameters)."""

    def udf(*args: Any) -> Any:
        values, timestamps, key, *params, errors = args
        return _run_udf(kind, values, timestamps, key, tuple(params), errors)

    wrapped = _engine_errors(udf)
    names = ("values", "timestamps", "key", *(name for name, _ in UDF_PARAMS[kind]), "errors")
    wrapped.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_ONLY) for n in names]
    )
    return wrapped


#: the struct fields of each job's UDF: its result columns, then the error columns
FIELDS: dict[str, list[str]] = {
    job: [c.name for c in columns_for(job, errors=True)] for job in ("entire", "last", "change_points")
}

# (udf name, job, return type)
_UDFS: tuple[tuple[str, str, str], ...] = (
    ("__ad_detect_entire", "entire", _struct_sql(FIELDS["entire"]) + "[]"),
    ("__ad_detect_last", "last", _struct_sql(FIELDS["last"])),
    ("__ad_change_points", "change_points", _struct_sql(FIELDS["change_points"]) + "[]"),
)


def register_udfs(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or replace) the three UDFs on ``con``."""
    for name, kind, ret in _UDFS:
        try:
            con.remove_function(name)
        except Exception:  # noqa: BLE001 - not registered yet
            pass
        types = ["DOUBLE[]", "TIMESTAMP[]", "VARCHAR", *(t for _, t in UDF_PARAMS[kind]), "VARCHAR"]
        con.create_function(name, _udf(kind), types, ret, type="arrow", null_handling="special")  # type: ignore[call-overload]
