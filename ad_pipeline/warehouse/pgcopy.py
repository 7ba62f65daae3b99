"""PostgreSQL binary ``COPY`` of Arrow columns, built with numpy (no per-row Python).

Binary COPY needs no text parsing on the server (a double is 8 bytes copied, not 17 digits read)
and, for fixed-width types, the whole stream is one numpy record array. Rows holding a null
are left to the caller (a field of length -1 breaks the fixed layout); so are types without a
fixed-width encoding here (text, numeric, ...): :func:`encode` then returns ``None``.

>>> import pyarrow as pa
>>> payload, left_out = encode([pa.array([1.5, None]), pa.array([True, False])], [701, 16])
>>> payload[:11], len(payload), left_out.tolist()
(b'PGCOPY\\n\\xff\\r\\n\\x00', 40, [False, True])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, header extension length 0
TRAILER = b"\xff\xff"  # field count -1
PG_EPOCH_DAYS = 10_957  # 2000-01-01 in days since 1970-01-01
PG_EPOCH_US = PG_EPOCH_DAYS * 86_400_000_000

BOOL, INT2, INT4, INT8, FLOAT4, FLOAT8, DATE, TIMESTAMP, TIMESTAMPTZ = 16, 21, 23, 20, 700, 701, 1082, 1114, 1184

# type OID -> (numpy wire type, Arrow type cast to first)
_WIRE: dict[int, tuple[str, pa.DataType]] = {
    BOOL: ("u1", pa.bool_()),
    INT2: (">i2", pa.int16()),
    INT4: (">i4", pa.int32()),
    INT8: (">i8", pa.int64()),
    FLOAT4: (">f4", pa.float32()),
    FLOAT8: (">f8", pa.float64()),
    DATE: (">i4", pa.date32()),
}


def _wire_values(arr: pa.Array, oid: int) -> tuple[str, np.ndarray] | None:
    """``(numpy wire type, values)`` of one column for a column of type ``oid``; None when not encodable."""
    typ = arr.type
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        # an aware Arrow timestamp is an instant (timestamptz), a naive one a wall-clock time (timestamp)
        if not pa.types.is_timestamp(typ) or (typ.tz is not None) != (oid == TIMESTAMPTZ):  # type: ignore[attr-defined]
            return None
        us = pc.cast(arr, pa.timestamp("us", typ.tz)).cast(pa.int64())  # type: ignore[attr-defined]
        return ">i8", us.to_numpy(zero_copy_only=False) - PG_EPOCH_US
    if oid not in _WIRE:
        return None
    wire, arrow_type = _WIRE[oid]
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ) != (oid == DATE):
        return None
    values = pc.cast(arr, arrow_type).to_numpy(zero_copy_only=False)
    if oid == DATE:
        values = values.astype("datetime64[D]").astype(np.int64) - PG_EPOCH_DAYS
    return wire, values


def encode(columns: Sequence[pa.Array], oids: Sequence[int]) -> tuple[bytes, np.ndarray] | None:
    """Binary COPY stream of the rows without nulls, and the mask of the rows left out.

    ``oids`` are the PostgreSQL type OIDs of the receiving columns, in order. Returns ``None``
    when a column has no fixed-width encoding here or does not fit its type (a lossy cast,
    an aware timestamp for a ``timestamp`` column): the caller then sends text instead.
    """
    n = len(columns[0]) if columns else 0
    left_out = np.zeros(n, dtype=bool)
    for arr in columns:
        if arr.null_count:
            left_out |= np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    keep = pa.array(~left_out)
    fields: list[tuple[str, np.ndarray]] = []
    for arr, oid in zip(columns, oids, strict=True):
        try:
            field = _wire_values(arr.filter(keep), oid)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. a value out of the column type's range
            return None
        if field is None:
            return None
        fields.append(field)
    layout: list[tuple[str, str]] = [("count", ">i2")]
    for i, (wire, _) in enumerate(fields):
        layout += [(f"len{i}", ">i4"), (f"val{i}", wire)]
    rows = np.empty(n - int(left_out.sum()), dtype=np.dtype(layout))
    rows["count"] = len(fields)
    for i, (wire, values) in enumerate(fields):
        rows[f"len{i}"] = np.dtype(wire).itemsize
        rows[f"val{i}"] = values
    return HEADER + rows.tobytes() + TRAILER, left_out


__all__ = ["encode", "BOOL", "INT2", "INT4", "INT8", "FLOAT4", "FLOAT8", "DATE", "TIMESTAMP", "TIMESTAMPTZ"]
