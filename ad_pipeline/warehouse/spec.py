"""What a warehouse scan is asked to do (:class:`ScanSpec`) and what it reports (:class:`ScanSummary`).

The result columns a scan writes come from the engine's result-column table (``engine/result.py``),
each with a SQL type class (``bool``, ``double``, ``bigint``; :mod:`.sql` maps a class to each
database's type name).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from ..engine.result import columns_for

KINDS = ("entire", "last", "change_points")

_SQL_CLASS = {"bool": "bool", "float": "double", "int": "bigint"}  # result column kind -> SQL type class


def result_columns(kind: str) -> list[tuple[str, str]]:
    """(column, SQL type class) of the results of ``kind``, from the engine's result-column table;
    ``period`` last, as in the tables written so far.

    >>> [name for name, _ in result_columns("last")][-3:]
    ['severity', 'suggested_window', 'period']
    """
    cols = sorted(columns_for(kind), key=lambda c: c.name == "period")
    return [(c.name, _SQL_CLASS[c.kind]) for c in cols]


META_COLUMNS = (("run_id", "text"), ("detected_at", "tstz"))
MAX_PARAMS = 30_000  # bound values per statement (PostgreSQL allows 65,535)
MAX_ERRORS_REPORTED = 100


@dataclass
class ScanSpec:
    """Everything a scan needs, already validated by the caller (an operator, the CLI)."""

    kind: str
    keys: list[str]
    timestamp: str
    values: list[str]
    table: tuple[str, ...] | None = None
    sql: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    scan_start: dt.datetime | None = None  # history read from here (window start - lookback)
    write_start: dt.datetime | None = None  # results replaced from here ...
    end: dt.datetime | None = None  # ... up to here (exclusive)
    target_table: tuple[str, ...] | None = None
    write_back: bool = False
    partitions: int = 1
    partition: int = 0
    chunk_rows: int = 200_000
    last_window: int | str = "suggested"
    carry: list[str] = field(default_factory=list)  # source columns read along (the CLI keeps them)
    keep_null_timestamps: bool = False  # True: a row without timestamp stays (its series is then invalid)
    run_id: str = ""
    log: Callable[[str], None] = lambda msg: None


def result_names(spec: ScanSpec) -> list[tuple[str, str]]:
    """(column, type class) of the result columns as written; prefixed by the value column when several."""
    cols = result_columns(spec.kind)
    if spec.write_back and len(spec.values) > 1:
        cols = [(f"{v}_{name}", typ) for v in spec.values for name, typ in cols]
    return cols


@dataclass
class ScanSummary:
    series: int = 0
    points: int = 0
    anomalies: int = 0
    rows_written: int = 0
    chunks: int = 0
    stale_series: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)
    invalid_count: int = 0
    anomalous_keys: list[Any] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "detect": 0.0, "write": 0.0})

    def to_dict(self, spec: ScanSpec) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": spec.kind,
            "series": self.series,
            "points": self.points,
            "anomalies" if spec.kind != "change_points" else "change_points": self.anomalies,
            "invalid_series": self.invalid_count,
            "errors": self.invalid,
            "rows_written": self.rows_written,
            "chunks": self.chunks,
            "partition": spec.partition,
            "partitions": spec.partitions,
            "window_start": _iso(spec.write_start),
            "window_end": _iso(spec.end),
            "history_start": _iso(spec.scan_start),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }
        if spec.kind == "last":
            out["anomalous_keys"] = self.anomalous_keys
            out["stale_series"] = self.stale_series
        return out


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat()


class Bounds:
    """The window bounds as bound values matching the timestamp column's type, and as datetime64."""

    def __init__(self, spec: ScanSpec, ts_type: pa.DataType) -> None:
        aware = pa.types.is_timestamp(ts_type) and ts_type.tz is not None

        def conv(t: dt.datetime | None) -> Any:
            if t is None:
                return None
            t = t.astimezone(dt.UTC) if t.tzinfo else t
            return t if aware else t.replace(tzinfo=None)

        def np64(t: dt.datetime | None) -> np.datetime64 | None:
            if t is None:
                return None
            t = t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t
            return np.datetime64(t, "ns")

        self.scan_start, self.write_start, self.end = conv(spec.scan_start), conv(spec.write_start), conv(spec.end)
        self.write_start64 = np64(spec.write_start)


# --------------------------------------------------------------------------- keys and partitions


def jsonable(v: Any) -> Any:
    """A key value as JSON (XCom) can carry it."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, np.generic):
        return jsonable(v.item())
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def key_value(key: tuple[Any, ...]) -> Any:
    """A key as reported in XCom: the value for one key column, a list for several."""
    return jsonable(key[0]) if len(key) == 1 else [jsonable(v) for v in key]


def key_hash(key: tuple[Any, ...]) -> int:
    """A hash of a key tuple that is the same in every process (Python's ``hash`` is salted).

    >>> key_hash(("a", 1)) == key_hash(("a", 1)), key_hash(("a", 1)) == key_hash(("a", 2))
    (True, False)
    """
    parts = []
    for v in key:
        if isinstance(v, bool):
            parts.append(f"b{int(v)}")
        elif isinstance(v, (int, np.integer)):
            parts.append(f"i{int(v)}")
        elif isinstance(v, (float, np.floating, Decimal)):
            f = float(v)
            parts.append(f"i{int(f)}" if f.is_integer() else f"f{f!r}")
        elif isinstance(v, (dt.datetime, dt.date)):
            parts.append(f"t{v.isoformat()}")
        elif isinstance(v, bytes):
            parts.append(f"x{v.hex()}")
        else:
            parts.append(f"s{v}")
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def plan_chunks(keys: list[tuple[Any, ...]], counts: list[int], chunk_rows: int, max_keys: int) -> list[list[int]]:
    """Greedy chunks of whole series: at most ``chunk_rows`` rows (a longer series is a chunk alone).

    >>> plan_chunks([("a",), ("b",), ("c",)], [5, 5, 5], 10, 100)
    [[0, 1], [2]]
    """
    chunks: list[list[int]] = []
    cur: list[int] = []
    rows = 0
    for i, n in enumerate(counts):
        if cur and (rows + n > chunk_rows or len(cur) >= max_keys):
            chunks.append(cur)
            cur, rows = [], 0
        cur.append(i)
        rows += n
    if cur:
        chunks.append(cur)
    return chunks
