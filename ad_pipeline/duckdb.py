"""DuckDB adapter: SQL functions over series held as lists, and table macros read from ``sql/``.

:func:`register` adds to a connection (UDFs do not persist in a database file, so call it on
every new connection; :func:`connect` opens and registers in one step):

- scalar functions over one series given as lists, one row per series::

      anomaly_detect_list(values DOUBLE[], timestamps TIMESTAMP[] := NULL, granularity := ..., ...)
          -> STRUCT(is_anomaly, ..., period, anomaly_error_code, anomaly_error)[]
      anomaly_detect_last_list(values, timestamps, ...)   -> STRUCT(..., suggested_window, ...)
      anomaly_change_points_list(values, timestamps, ...) -> STRUCT(is_change_point, ...)[]

  Each is a macro over a vectorized Arrow UDF: DuckDB hands the UDF a chunk of up to 2048
  rows (series) and the UDF makes ONE engine batch call for all of them, converting the list
  column's flat values and offsets directly (no Python per row or per point).
- table macros ``anomaly_detect``, ``anomaly_detect_last`` and ``anomaly_change_points`` over a
  table, view or file (``'metrics'``, ``'data/*.parquet'``), see ``docs/duckdb.md``.

Every parameter left NULL means the engine's default (sensitivity 99, max_anomaly_ratio 0.25,
impute_mode auto, boundary_version V1, method azure; period and granularity detected). An engine
refusal aborts the query with its code in the error text, e.g. ``InvalidModelArgument: The
'sensitivity' field must be a number between 0 and 100, got 120.``; with ``errors := 'coerce'``
an invalid series gets NULL results and ``anomaly_error_code`` / ``anomaly_error`` instead.

>>> import ad_pipeline.duckdb as add
>>> con = add.connect()
>>> _ = con.execute("CREATE TABLE m AS SELECT 'a' AS key, TIMESTAMP '2024-01-01' + to_hours(i) AS ts, "
...                 "CASE WHEN i = 30 THEN 50 ELSE (i % 4)::DOUBLE END AS value FROM range(48) t(i)")
>>> con.sql("SELECT ts, value FROM anomaly_detect('m', sensitivity := 95) WHERE is_anomaly").fetchall()
[(datetime.datetime(2024, 1, 2, 6, 0), 50.0)]
>>> con.close()
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .engine.batch import detect_change_points_batch, detect_entire_batch, detect_last_batch
from .engine.layout import CHANGE_POINT_COLUMNS, ENTIRE_COLUMNS, ERROR_COLUMNS, LAST_COLUMNS
from .engine.params import params_for
from .engine.result import column_kinds
from .errors import AnomalyDetectorError, BadArgument, MissingDependency, error_from_code

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

__all__ = [
    "register",
    "connect",
    "quote_identifier",
    "entire_to_arrow",
    "last_to_arrow",
    "change_points_to_arrow",
    "detect_arrow",
    "SQL_FILES",
]

# the SQL files of ad_pipeline.sql, executed in this order (helpers first: the table macros use them)
SQL_FILES = (
    "_helpers.sql",
    "anomaly_detect_list.sql",
    "anomaly_detect.sql",
    "anomaly_detect_last.sql",
    "anomaly_change_points.sql",
)

# parameters of the UDFs after (values, timestamps, key_label), in order, with their SQL types
DETECT_PARAMS: tuple[tuple[str, str], ...] = tuple((p.name, p.sql_type) for p in params_for("entire"))
CHANGE_POINT_PARAMS: tuple[tuple[str, str], ...] = tuple((p.name, p.sql_type) for p in params_for("change_points"))

_SQL_TYPES = {"bool": "BOOLEAN", "float": "DOUBLE", "int": "INTEGER", "str": "VARCHAR"}
_KINDS = column_kinds()


def _struct_sql(names: list[str]) -> str:
    return "STRUCT(" + ", ".join(f"{n} {_SQL_TYPES[_KINDS.get(n, 'float')]}" for n in names) + ")"


ENTIRE_NAMES = [*ENTIRE_COLUMNS, *ERROR_COLUMNS]
LAST_NAMES = [*LAST_COLUMNS, *ERROR_COLUMNS]
CHANGE_POINT_NAMES = [*CHANGE_POINT_COLUMNS, *ERROR_COLUMNS]


def _pa() -> Any:
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingDependency.for_extra("pyarrow", "duckdb") from None
    return pa


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingDependency.for_extra("duckdb", "duckdb") from None
    return duckdb


def quote_identifier(name: str) -> str:
    """A SQL identifier in double quotes, inner quotes doubled (safe for any column/table name).

    >>> quote_identifier('my "odd" col')
    '"my ""odd"" col"'
    """
    return '"' + str(name).replace('"', '""') + '"'


# --------------------------------------------------------------------------- Arrow <-> engine


class _ListInput:
    """A chunk of list rows as the engine's flat layout: rows that are NULL are left out."""

    def __init__(self, values: Any, timestamps: Any, coerce: bool = False) -> None:
        pa = _pa()
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
        pa = _pa()
        if self.row_valid.all():
            return self.list_type.from_arrays(pa.array(self.offsets), struct)
        lengths = np.zeros(self.n_rows, dtype=np.int64)
        lengths[self.valid_rows] = self.lengths
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        return self.list_type.from_arrays(pa.array(offsets), struct, mask=pa.array(~self.row_valid))

    def wrap_rows(self, struct: Any) -> Any:
        """A column aligned with the input rows from one struct per valid row (NULL rows stay NULL)."""
        pa = _pa()
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


def _float(pa: Any, x: NDArray[np.float64], null: NDArray[np.bool_] | None = None) -> Any:
    mask = np.isnan(x) if null is None else (np.isnan(x) | null)
    return pa.array(x, type=pa.float64(), mask=mask if mask.any() else None)


def _bool(pa: Any, x: NDArray[np.bool_], null: NDArray[np.bool_] | None) -> Any:
    return pa.array(x, type=pa.bool_(), mask=null if null is not None and null.any() else None)


def _int(pa: Any, x: NDArray[np.int64]) -> Any:
    mask = x < 0
    return pa.array(x.astype(np.int32), type=pa.int32(), mask=mask if mask.any() else None)


def _str(pa: Any, x: NDArray[np.object_]) -> Any:
    return pa.array(x, type=pa.string())


def _error_arrays(pa: Any, res: Any, repeat: NDArray[np.int64] | None) -> list[Any]:
    code, msg = res.error_code, res.error_message
    n = int(repeat.sum()) if repeat is not None else len(code)
    if all(c is None for c in code):
        return [pa.nulls(n, pa.string()), pa.nulls(n, pa.string())]
    if repeat is not None:
        code, msg = np.repeat(code, repeat), np.repeat(msg, repeat)
    return [_str(pa, code), _str(pa, msg)]


def entire_to_arrow(res: Any) -> Any:
    """An :class:`~ad_pipeline.EntireBatchResult` as a flat Arrow struct array aligned with the values.

    Fields as the DataFrame adapters' columns (``is_anomaly`` ... ``period``) plus
    ``anomaly_error_code`` and ``anomaly_error``. NaN becomes NULL; rows of an invalid series
    (``errors="coerce"``) are NULL except the error fields.

    Examples
    --------
    >>> import numpy as np, ad_pipeline as ad
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
    >>> s = entire_to_arrow(ad.detect_entire_batch(x, [0, 24], sensitivity=95))
    >>> s.field("is_anomaly").to_pylist()[9], s.type.num_fields
    (True, 12)
    """
    pa = _pa()
    lengths = np.diff(res.offsets)
    invalid = np.repeat(~res.valid, lengths) if not res.valid.all() else None
    return _struct(pa, res, ENTIRE_COLUMNS, ENTIRE_NAMES, ("period",), invalid, lengths)


def _struct(
    pa: Any, res: Any, columns: dict[str, str], names: Any, ints: tuple[str, ...], invalid: Any, lengths: Any
) -> Any:
    """Result arrays as one Arrow struct array; per-series ``ints`` repeated over ``lengths`` when given."""
    arrays = []
    for name, attr in columns.items():
        x = getattr(res, attr)
        if name in ints:
            arrays.append(_int(pa, x if lengths is None else np.repeat(x, lengths)))
        elif x.dtype == bool:
            arrays.append(_bool(pa, x, invalid))
        else:
            arrays.append(_float(pa, x))
    arrays += _error_arrays(pa, res, lengths)
    return pa.StructArray.from_arrays(arrays, names=names)


def last_to_arrow(res: Any) -> Any:
    """A :class:`~ad_pipeline.LastBatchResult` as an Arrow struct array, one entry per series.

    Examples
    --------
    >>> import numpy as np, ad_pipeline as ad
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 8); x[-1] = 40.0
    >>> last_to_arrow(ad.detect_last_batch(x, [0, 32])).field("is_anomaly").to_pylist()
    [True]
    """
    pa = _pa()
    invalid = ~res.valid if not res.valid.all() else None
    return _struct(pa, res, LAST_COLUMNS, LAST_NAMES, ("period", "suggested_window"), invalid, None)


def change_points_to_arrow(res: Any) -> Any:
    """A :class:`~ad_pipeline.ChangePointBatchResult` as a flat Arrow struct array aligned with the values.

    Examples
    --------
    >>> import numpy as np, ad_pipeline as ad
    >>> x = np.r_[np.zeros(100), np.full(100, 8.0)] + np.random.default_rng(1).normal(size=200)
    >>> s = change_points_to_arrow(ad.detect_change_points_batch(x, [0, 200]))
    >>> [i for i, v in enumerate(s.field("is_change_point").to_pylist()) if v]
    [100]
    """
    pa = _pa()
    lengths = np.diff(res.offsets)
    invalid = np.repeat(~res.valid, lengths) if not res.valid.all() else None
    arrays = [
        _bool(pa, res.is_change_point, invalid),
        _float(pa, res.confidence_scores),
        *_error_arrays(pa, res, lengths),
    ]
    return pa.StructArray.from_arrays(arrays, names=CHANGE_POINT_NAMES)


def _engine_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Re-raise engine errors as the class named by their code, so SQL shows ``Code: message``."""

    @functools.wraps(fn)
    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except AnomalyDetectorError as exc:
            raise error_from_code(exc.code, exc.message) from None

    return wrapped


# kind -> (engine batch function, batch result -> Arrow struct array, one result per point?)
KINDS: dict[str, tuple[Callable[..., Any], Callable[[Any], Any], bool]] = {
    "entire": (detect_entire_batch, entire_to_arrow, True),
    "last": (detect_last_batch, last_to_arrow, False),
    "change_points": (detect_change_points_batch, change_points_to_arrow, True),
}


def detect_arrow(kind: str, values: Any, offsets: Any, timestamps: Any = None, **kwargs: Any) -> Any:
    """One engine batch call of ``kind`` ("entire", "last", "change_points"), result as an Arrow struct array.

    ``kwargs`` go to the batch function (``errors``, ``keys``, parameters). The result is flat
    (aligned with ``values``) for "entire" and "change_points", one entry per series for "last".

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
    >>> detect_arrow("entire", x, [0, 24], sensitivity=95).field("is_anomaly").to_pylist()[9]
    True
    """
    batch, to_arrow, _ = KINDS[kind]
    return to_arrow(batch(values, offsets, timestamps, **kwargs))


def _run_udf(kind: str, values: Any, timestamps: Any, key: Any, params: tuple[Any, ...], errors: Any) -> Any:
    """The body of every UDF: list chunk -> one engine batch call -> list (or struct) chunk."""
    mode = _errors_mode(errors)
    inp = _ListInput(values, timestamps, coerce=mode == "coerce")
    names = CHANGE_POINT_PARAMS if kind == "change_points" else DETECT_PARAMS
    struct = detect_arrow(
        kind, inp.values, inp.offsets, inp.timestamps, errors=mode,
        keys=_keys(key, inp.valid_rows), **_engine_params(names, params, inp.row_valid),
    )  # fmt: skip
    return inp.wrap_flat(struct) if KINDS[kind][2] else inp.wrap_rows(struct)


# DuckDB needs a fixed arity: these spell the parameters out (see DETECT_PARAMS / CHANGE_POINT_PARAMS).
@_engine_errors
def _entire_udf(
    values, timestamps, key, gran, interval, period, ratio, sens, impute, fixed, boundary, method, errors
):  # type: ignore[no-untyped-def]  # noqa: E501
    params = (gran, interval, period, ratio, sens, impute, fixed, boundary, method)
    return _run_udf("entire", values, timestamps, key, params, errors)


@_engine_errors
def _last_udf(
    values, timestamps, key, gran, interval, period, ratio, sens, impute, fixed, boundary, method, errors
):  # type: ignore[no-untyped-def]  # noqa: E501
    params = (gran, interval, period, ratio, sens, impute, fixed, boundary, method)
    return _run_udf("last", values, timestamps, key, params, errors)


@_engine_errors
def _change_points_udf(values, timestamps, key, gran, interval, period, window, threshold, errors):  # type: ignore[no-untyped-def]
    return _run_udf(
        "change_points", values, timestamps, key, (gran, interval, period, window, threshold), errors
    )


# (udf name, python function, parameter types, return type)
_UDFS: tuple[tuple[str, Callable[..., Any], tuple[tuple[str, str], ...], str], ...] = (
    ("__ad_detect_entire", _entire_udf, DETECT_PARAMS, _struct_sql(ENTIRE_NAMES) + "[]"),
    ("__ad_detect_last", _last_udf, DETECT_PARAMS, _struct_sql(LAST_NAMES)),
    ("__ad_change_points", _change_points_udf, CHANGE_POINT_PARAMS, _struct_sql(CHANGE_POINT_NAMES) + "[]"),
)


def sql_text(name: str) -> str:
    """The text of one SQL file shipped in ``ad_pipeline.sql`` (the top-level ``sql/`` folder)."""
    return resources.files("ad_pipeline.sql").joinpath(name).read_text(encoding="utf-8")


def register(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Register the anomaly detection functions and table macros on a DuckDB connection.

    UDFs live in the connection, not in the database file: call this on every connection
    (registering twice is harmless). The macros are created as TEMP macros, so a database
    file is never changed.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection (file or in-memory database).

    Returns
    -------
    duckdb.DuckDBPyConnection
        The same connection, for chaining.

    Examples
    --------
    >>> import duckdb
    >>> con = register(duckdb.connect())
    >>> con.execute("SELECT len(anomaly_detect_list(range(24)::DOUBLE[]))").fetchall()
    [(24,)]
    >>> con.close()
    """
    _pa()
    for name, fn, params, ret in _UDFS:
        try:
            con.remove_function(name)
        except Exception:  # noqa: BLE001 - not registered yet
            pass
        types = ["DOUBLE[]", "TIMESTAMP[]", "VARCHAR", *(t for _, t in params), "VARCHAR"]
        con.create_function(name, fn, types, ret, type="arrow", null_handling="special")  # type: ignore[call-overload]
    for f in SQL_FILES:
        con.execute(sql_text(f))
    return con


def connect(
    database: str = ":memory:", *, read_only: bool = False, **kwargs: Any
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database (file path or ``":memory:"``) and :func:`register` the functions on it.

    Examples
    --------
    >>> con = connect()
    >>> con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'anomaly_detect'").fetchall()
    [(1,)]
    >>> con.close()
    """
    duckdb = _duckdb()
    return register(duckdb.connect(database, read_only=read_only, **kwargs))


from ._tabular_duckdb import register_model  # noqa: E402,F401  (tabular models as SQL functions)
