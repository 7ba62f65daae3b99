"""The one Arrow <-> engine bridge: Arrow columns to the engine's arrays, engine results to Arrow.

Used by the warehouse scan (:mod:`ad_pipeline.warehouse`, which serves the Airflow operators and the
CLI), by :mod:`ad_pipeline.duckdb` (UDF results) and :mod:`ad_pipeline.spark` (``mapInArrow``).
One rule for missing results everywhere: a NaN float, a negative count (``period`` of an invalid
series) and every result of an invalid series (``errors="coerce"``) are Arrow NULLs; the error
columns are NULL where there is no error.

>>> import numpy as np
>>> to_arrow(np.array([1.5, np.nan]), "float").to_pylist()
[1.5, None]
>>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
>>> detect_arrow("entire", x, [0, 24], sensitivity=95).field("is_anomaly").to_pylist()[9]
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .engine.batch import detect_change_points_batch, detect_entire_batch, detect_last_batch
from .engine.result import columns_for
from .errors import MissingDependency

try:
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - depends on the environment
    raise MissingDependency.for_extra("pyarrow", "duckdb") from None

if TYPE_CHECKING:
    from .engine.layout import Column

__all__ = ["ARROW_TYPES", "to_arrow", "column_to_arrow", "batch_to_arrow", "detect_arrow", "entire_to_arrow",
           "last_to_arrow", "change_points_to_arrow", "float_values", "timestamps", "run_offsets", "KINDS"]

#: Arrow type of each result column kind (``engine.result.ResultColumn.kind``); counts may be asked narrower
ARROW_TYPES: dict[str, pa.DataType] = {"bool": pa.bool_(), "float": pa.float64(), "int": pa.int64(), "str": pa.string()}


# --------------------------------------------------------------------------- Arrow -> engine


def float_values(col: Any) -> NDArray[np.float64]:
    """A numeric Arrow column as float64 values (NULL -> NaN, the engine's missing value)."""
    arr = col.cast(pa.float64()) if col.type != pa.float64() else col
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)


def timestamps(col: Any) -> NDArray[np.datetime64]:
    """A timestamp (or date) Arrow column as datetime64: aware ones as their UTC instants.

    Microseconds unless the column has nanoseconds: nanoseconds end in 2262, and a later
    timestamp must reach the engine as itself, not wrapped around to 1915.
    """
    if pa.types.is_timestamp(col.type) and col.type.tz is not None:
        col = col.cast(pa.timestamp(col.type.unit))  # the instants in UTC, without the zone
    unit = "ns" if pa.types.is_timestamp(col.type) and col.type.unit == "ns" else "us"
    return np.asarray(col.to_numpy(), dtype=f"datetime64[{unit}]")


def run_offsets(table: Any, keys: list[str] | list[int]) -> NDArray[np.int64]:
    """Offsets of the runs of equal keys in a table sorted by key: series *i* is rows
    ``offsets[i]:offsets[i+1]``.

    >>> run_offsets(pa.table({"k": ["a", "a", "b"]}), ["k"]).tolist()
    [0, 2, 3]
    """
    n = table.num_rows
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.zeros(n - 1, dtype=bool)
    for c in keys:
        col = table.column(c)
        change |= np.asarray(pc.fill_null(pc.not_equal(col.slice(1), col.slice(0, n - 1)), True), dtype=bool)
    return np.concatenate(([0], np.flatnonzero(change) + 1, [n])).astype(np.int64)


# --------------------------------------------------------------------------- engine -> Arrow


def to_arrow(values: NDArray[Any], kind: str, null: NDArray[np.bool_] | None = None, *,
             int_type: pa.DataType | None = None, str_type: pa.DataType | None = None) -> pa.Array:
    """One result column as Arrow: NULL where ``null`` is True, for NaN floats and negative counts.

    An error column (kind ``str``) holds None where there is no error, which is its NULL.
    """
    if kind == "str":
        return pa.array(values, type=str_type or pa.string())
    mask = np.zeros(len(values), dtype=bool) if null is None else np.asarray(null, dtype=bool)
    if kind == "float":
        mask = mask | np.isnan(values)
    elif kind == "int":
        mask = mask | (values < 0)
    typ = int_type if kind == "int" and int_type is not None else ARROW_TYPES[kind]
    return pa.array(values, type=typ, mask=mask if mask.any() else None)


def column_to_arrow(col: Column, kind: str, rows: NDArray[np.int64] | slice | None = None, *,
                    int_type: pa.DataType | None = None, str_type: pa.DataType | None = None) -> pa.Array:
    """A result :class:`~ad_pipeline.engine.layout.Column` of ``kind`` (its table kind), optionally only ``rows``, as Arrow."""
    values = col.values if rows is None else col.values[rows]
    mask = None if col.mask is None else (col.mask if rows is None else col.mask[rows])
    return to_arrow(values, kind, mask, int_type=int_type, str_type=str_type)


def batch_to_arrow(kind: str, res: Any, *, int_type: pa.DataType | None = None) -> pa.StructArray:
    """A batch result of ``kind`` as one Arrow struct array (result columns, then the error columns):
    flat (aligned with the values) for ``entire`` and ``change_points``, one entry per series for ``last``."""
    per_point = kind != "last"
    lengths = np.diff(res.offsets) if per_point else None
    invalid = None
    if not res.valid.all():
        invalid = np.repeat(~res.valid, lengths) if lengths is not None else ~res.valid
    arrays = []
    for c in columns_for(kind):
        x = getattr(res, c.attribute_for(kind))
        if lengths is not None and c.per_series:
            x = np.repeat(x, lengths)
        arrays.append(to_arrow(x, c.kind, invalid, int_type=int_type))
    code, msg = res.error_code, res.error_message
    n = int(lengths.sum()) if lengths is not None else len(code)
    if all(c is None for c in code):
        arrays += [pa.nulls(n, pa.string()), pa.nulls(n, pa.string())]
    else:
        if lengths is not None:
            code, msg = np.repeat(code, lengths), np.repeat(msg, lengths)
        arrays += [to_arrow(code, "str"), to_arrow(msg, "str")]
    return pa.StructArray.from_arrays(arrays, names=[c.name for c in columns_for(kind, errors=True)])


def entire_to_arrow(res: Any) -> pa.StructArray:
    """An :class:`~ad_pipeline.EntireBatchResult` as a flat Arrow struct array aligned with the values
    (counts as int32, DuckDB's INTEGER).

    >>> import ad_pipeline as ad
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
    >>> s = entire_to_arrow(ad.detect_entire_batch(x, [0, 24], sensitivity=95))
    >>> s.field("is_anomaly").to_pylist()[9], s.type.num_fields
    (True, 12)
    """
    return batch_to_arrow("entire", res, int_type=pa.int32())


def last_to_arrow(res: Any) -> pa.StructArray:
    """A :class:`~ad_pipeline.LastBatchResult` as an Arrow struct array, one entry per series.

    >>> import ad_pipeline as ad
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 8); x[-1] = 40.0
    >>> last_to_arrow(ad.detect_last_batch(x, [0, 32])).field("is_anomaly").to_pylist()
    [True]
    """
    return batch_to_arrow("last", res, int_type=pa.int32())


def change_points_to_arrow(res: Any) -> pa.StructArray:
    """A :class:`~ad_pipeline.ChangePointBatchResult` as a flat Arrow struct array aligned with the values.

    >>> import ad_pipeline as ad
    >>> x = np.r_[np.zeros(100), np.full(100, 8.0)] + np.random.default_rng(1).normal(size=200)
    >>> s = change_points_to_arrow(ad.detect_change_points_batch(x, [0, 200]))
    >>> [i for i, v in enumerate(s.field("is_change_point").to_pylist()) if v]
    [100]
    """
    return batch_to_arrow("change_points", res, int_type=pa.int32())


# kind -> (engine batch function, batch result -> Arrow struct array, one result per point?)
KINDS: dict[str, tuple[Callable[..., Any], Callable[[Any], Any], bool]] = {
    "entire": (detect_entire_batch, entire_to_arrow, True),
    "last": (detect_last_batch, last_to_arrow, False),
    "change_points": (detect_change_points_batch, change_points_to_arrow, True),
}


def detect_arrow(kind: str, values: Any, offsets: Any, timestamps: Any = None, **kwargs: Any) -> pa.StructArray:
    """One engine batch call of ``kind`` ("entire", "last", "change_points"), result as an Arrow struct array.

    ``kwargs`` go to the batch function (``errors``, ``keys``, parameters).
    """
    batch, convert, _ = KINDS[kind]
    return convert(batch(values, offsets, timestamps, **kwargs))
