"""One scan of a warehouse table: list the keys, read chunks of whole series, detect, write.

This module does not import Airflow: the operators in :mod:`ad_pipeline.airflow.operators`
resolve the hook, the window and the run id, then hand a :class:`ScanSpec` and a backend
(:mod:`ad_pipeline.airflow._backends`) to :func:`run_scan`.

The flow, for the keys of one hash partition:

1. probe the source's schema (``WHERE 1 = 0``): wrong names fail here, before anything is written;
2. create the results table if missing (or add the result columns to the source table), committed;
3. list the keys with rows in the window (``GROUP BY key``: one row per series);
4. in ONE transaction, for each chunk of whole series (at most ``chunk_rows`` rows): read it as
   Arrow, convert to flat values + offsets, make ONE engine batch call, and replace the old results
   (``DELETE`` + bulk insert, or ``UPDATE ... FROM`` the bulk-loaded rows); commit at the end.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..engine.layout import Column, FrameData, Layout, run_change_points, run_detect, run_last
from ..errors import AnomalyDetectorError, BadArgument
from ._backends import Backend, Params

KINDS = ("entire", "last", "change_points")

# result column -> SQL type class, for the DDL (values come from ad_pipeline.engine.layout's columns)
_DETECT_TYPES = {
    "is_anomaly": "bool",
    "is_positive_anomaly": "bool",
    "is_negative_anomaly": "bool",
    "expected_value": "double",
    "lower_boundary": "double",
    "upper_boundary": "double",
    "lower_margin": "double",
    "upper_margin": "double",
    "severity": "double",
}
ENTIRE_COLUMNS: dict[str, str] = dict(_DETECT_TYPES)
LAST_COLUMNS: dict[str, str] = {**_DETECT_TYPES, "suggested_window": "bigint"}
CHANGE_POINT_COLUMNS: dict[str, str] = {"is_change_point": "bool", "change_point_confidence": "double"}
RESULT_COLUMNS = {"entire": ENTIRE_COLUMNS, "last": LAST_COLUMNS, "change_points": CHANGE_POINT_COLUMNS}
MAX_PARAMS = 30_000  # bound values per statement (PostgreSQL allows 65,535)
MAX_ERRORS_REPORTED = 100


@dataclass
class ScanSpec:
    """Everything a scan needs, already validated by the operator."""

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
    run_id: str = ""
    log: Callable[[str], None] = lambda msg: None


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


# --------------------------------------------------------------------------- SQL pieces


class _Sql:
    """SQL text for one scan: the source, the window predicate, key lists (values always bound)."""

    def __init__(self, spec: ScanSpec, backend: Backend, *, read: bool) -> None:
        self.spec, self.b, self.read = spec, backend, read
        self.q = backend.quote_read if read else backend.quote

    def source(self) -> str:
        if self.spec.table is not None:
            return self.b.qualified(self.spec.table, read=self.read)
        body = (self.spec.sql or "").strip().rstrip(";").strip()
        if self.read and self.b.read_style != "format":
            return f"({body}) AS ad_source"
        return f"({body.replace('%', '%%') if self.b.write_style == 'format' else body}) AS ad_source"

    def window(self, p: Params, start: Any, end: Any) -> str:
        ts = self.q(self.spec.timestamp)
        conds = [f"{ts} IS NOT NULL"]
        if start is not None:
            conds.append(f"{ts} >= {p.add(start)}")
        if end is not None:
            conds.append(f"{ts} < {p.add(end)}")
        return " AND ".join(conds)

    def key_in(self, p: Params, keys: Sequence[tuple[Any, ...]], extra: Sequence[str] = ()) -> str:
        cols = [self.q(k) for k in [*self.spec.keys, *extra]]
        if len(cols) == 1:
            return f"{cols[0]} IN ({', '.join(p.add(k[0]) for k in keys)})"
        tuples = ", ".join("(" + ", ".join(p.add(v) for v in k) + ")" for k in keys)
        return f"({', '.join(cols)}) IN ({tuples})"


# --------------------------------------------------------------------------- the scan


class _Bounds:
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


def _is_bad_request(exc: BaseException) -> bool:
    """A database error that retrying cannot fix (unknown name, syntax, type mismatch)."""
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {"OperationalError", "InterfaceError", "IOException", "ConnectionException", "InternalError"}:
        return False
    return bool(
        names
        & {
            "ProgrammingError",
            "CatalogException",
            "BinderException",
            "ParserException",
            "ConversionException",
            "InvalidInputException",
            "DataError",
            "IntegrityError",
            "ConstraintException",
            "NotSupportedError",
        }
    )


def _source_error(spec: ScanSpec, exc: BaseException) -> BadArgument:
    what = f"table {'.'.join(spec.table)!r}" if spec.table else "sql query"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    cols = ", ".join(repr(c) for c in [*spec.keys, spec.timestamp, *spec.values])
    return BadArgument(f"The source {what} with columns {cols} could not be read: {first}")


def _probe(spec: ScanSpec, backend: Backend) -> pa.Schema:
    s = _Sql(spec, backend, read=True)
    cols = ", ".join(s.q(c) for c in [*spec.keys, spec.timestamp, *spec.values])
    try:
        schema = backend.query_arrow(f"SELECT {cols} FROM {s.source()} WHERE 1 = 0").schema
    except Exception as exc:
        if _is_bad_request(exc):
            raise _source_error(spec, exc) from exc
        raise
    ts_type = schema.field(len(spec.keys)).type  # null: a plain DB-API result without rows tells no types
    if not (pa.types.is_timestamp(ts_type) or pa.types.is_date(ts_type) or pa.types.is_null(ts_type)):
        raise BadArgument(
            f"The 'timestamp' column {spec.timestamp!r} must be a timestamp or date column, got type {ts_type}."
        )
    for i, name in enumerate(spec.values):
        t = schema.field(len(spec.keys) + 1 + i).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)):
            raise BadArgument(f"The 'value' column {name!r} must be numeric, got type {t}.")
    return schema


def _result_names(spec: ScanSpec) -> list[tuple[str, str]]:
    """(column, type) of the result columns as written; prefixed by the value column when several."""
    cols = [*RESULT_COLUMNS[spec.kind].items()] + ([("period", "bigint")] if spec.kind != "change_points" else [])
    if spec.write_back and len(spec.values) > 1:
        cols = [(f"{v}_{name}", typ) for v in spec.values for name, typ in cols]
    return cols


def _sql_type(backend: Backend, typ: str) -> str:
    return {
        "bool": "BOOLEAN",
        "double": backend.double_type,
        "bigint": "BIGINT",
        "text": backend.text_type,
        "tstz": backend.tstz_type,
    }[typ]


# result type class -> the database type names (upper case, without "(n)") that hold its values unchanged
_COMPATIBLE = {
    "bool": {"BOOLEAN", "BOOL"},
    "double": {"DOUBLE", "DOUBLE PRECISION", "FLOAT8"},
    "bigint": {"BIGINT", "INT8", "INTEGER", "INT4", "INT", "HUGEINT"},
    "text": {"VARCHAR", "TEXT", "CHARACTER VARYING", "STRING"},
    "tstz": {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"},
}
META_COLUMNS = (("run_id", "text"), ("detected_at", "tstz"))
_TWIN_ERRORS = {"UniqueViolation", "DuplicateTable", "DuplicateObject", "DuplicateColumn", "IntegrityError",
                "TransactionException"}  # fmt: skip


def output_ddl(backend: Backend, table: str, what: str, wanted: Sequence[tuple[str, str]], create: str | None) -> list[str]:
    """The DDL an output table needs; nothing runs here, and nothing is needed when it is complete.

    The columns it already has must hold the results unchanged: one of another type (a ``BOOLEAN``
    ``expected_value``, a ``VARCHAR`` ``period``) is refused, naming column, expected and found type,
    before anything is written. A missing table gets ``create`` (when given), missing columns get
    ``ALTER TABLE ... ADD COLUMN``. Run the statements inside the write transaction: a failed run
    then leaves no table, column or index behind, and a role that does not own an existing complete
    output runs no DDL at all.
    """
    existing = backend.column_types(table)
    if existing is None:
        return [] if create is None else [create]
    if backend.dialect == "duckdb":  # DuckDB names are case-insensitive
        existing = {k.lower(): v for k, v in existing.items()}
    wrong, ddl = [], []
    for name, typ in wanted:
        found = existing.get(name.lower() if backend.dialect == "duckdb" else name)
        if found is None:
            ddl.append(f"ALTER TABLE {table} ADD COLUMN {backend.quote(name)} {_sql_type(backend, typ)}")
        elif found and found.split("(")[0].strip().upper() not in _COMPATIBLE[typ]:
            wrong.append(f"{name!r} is {found}, expected {_sql_type(backend, typ)}")
    if wrong:
        raise BadArgument(
            f"The {what} {table.replace('%%', '%')} has result column(s) of another type: {'; '.join(wrong)}. "
            "Results are not converted: change or drop the column(s), or write to another table."
        )
    return ddl


def _prepare_output(spec: ScanSpec, backend: Backend) -> list[str]:
    """The DDL of the results table (created when missing) or of the source's result columns."""
    q = backend.quote
    s = _Sql(spec, backend, read=False)
    results = [*_result_names(spec), *META_COLUMNS]
    if spec.target_table is None:
        return output_ddl(backend, backend.qualified(spec.table or ()), "source table (write_back)", results, None)
    target = backend.qualified(spec.target_table)
    sel = [q(k) for k in spec.keys] + [q(spec.timestamp)]
    values: list[tuple[str, str]] = [("metric", "text"), ("value", "double")] if len(spec.values) > 1 else [("value", "double")]
    if len(spec.values) > 1:
        sel.append(f"CAST(NULL AS {backend.text_type}) AS {q('metric')}")
        sel.append(f"CAST(NULL AS {backend.double_type}) AS {q('value')}")
    else:
        sel.append(f"CAST({q(spec.values[0])} AS {backend.double_type}) AS {q('value')}")
    for name, typ in results:
        sel.append(f"CAST(NULL AS {_sql_type(backend, typ)}) AS {q(name)}")
    create = f"CREATE TABLE IF NOT EXISTS {target} AS SELECT {', '.join(sel)} FROM {s.source()} WHERE 1 = 0"
    ddl = output_ddl(backend, target, "results table", [*values, *results], create)
    if backend.dialect == "postgres" and ddl and ddl[0] == create:  # the index comes with the table it creates
        digest = hashlib.blake2b(".".join(spec.target_table).encode(), digest_size=6).hexdigest()
        idx_cols = ", ".join(q(c) for c in [*spec.keys, spec.timestamp])
        ddl.append(f"CREATE INDEX IF NOT EXISTS {q('ad_pipeline_idx_' + digest)} ON {target} ({idx_cols})")
    return ddl


def run_ddl(backend: Backend, prepare: Callable[[], list[str]], what: str) -> list[str]:
    """Begin the write transaction and run the DDL ``prepare()`` gives in it; returns the statements run.

    A mapped twin creating the same table at the same moment makes the first attempt fail once
    its transaction commits: then everything is rolled back and prepared again (DDL comes first
    in the transaction, so nothing else is lost).
    """
    for attempt in range(2):
        ddl = prepare()
        backend.begin()
        try:
            for stmt in ddl:
                backend.execute(stmt)
            return ddl
        except Exception as exc:
            backend.rollback()
            if attempt == 0 and {c.__name__ for c in type(exc).__mro__} & _TWIN_ERRORS:
                continue
            if _is_bad_request(exc):
                raise BadArgument(f"Preparing the {what} failed: {_first_line(exc)}") from exc
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def refused_write(exc: BaseException) -> BaseException:
    """What a failed write raises: a request the database refuses (a constraint, a conversion) as
    a :class:`BadArgument` carrying the database's own error (no retry can fix it); a passing fault
    (a lost connection) as is, so Airflow retries."""
    if isinstance(exc, AnomalyDetectorError) or not _is_bad_request(exc):
        return exc
    refused = BadArgument(f"The database refused the scan: {_first_line(exc)}")
    refused.__cause__ = exc
    return refused


def _list_keys(spec: ScanSpec, backend: Backend, bounds: _Bounds) -> tuple[list[tuple[Any, ...]], list[int]]:
    s = _Sql(spec, backend, read=True)
    p = Params(backend.read_style)
    keys = ", ".join(s.q(k) for k in spec.keys)
    not_null = " AND ".join(f"{s.q(k)} IS NOT NULL" for k in spec.keys)
    sql = (
        f"SELECT {keys}, COUNT(*) AS n FROM {s.source()} WHERE {s.window(p, bounds.scan_start, bounds.end)} "
        f"AND {not_null} GROUP BY {keys} ORDER BY {keys}"
    )
    try:
        tbl = backend.query_arrow(sql, p.values)
    except Exception as exc:
        if _is_bad_request(exc):
            raise _source_error(spec, exc) from exc
        raise
    cols = [tbl.column(i).to_pylist() for i in range(len(spec.keys))]
    key_tuples = list(zip(*cols, strict=True)) if cols and tbl.num_rows else []
    counts = [int(n) for n in tbl.column(len(spec.keys)).to_pylist()]
    return key_tuples, counts


def _read_chunk(spec: ScanSpec, backend: Backend, bounds: _Bounds, keys: Sequence[tuple[Any, ...]]) -> pa.Table:
    s = _Sql(spec, backend, read=True)
    p = Params(backend.read_style)
    sel = [s.q(k) for k in spec.keys] + [s.q(spec.timestamp)]
    sel += [f"CAST({s.q(v)} AS {backend.double_type}) AS {s.q(f'ad_value_{i}')}" for i, v in enumerate(spec.values)]
    order = ", ".join(s.q(c) for c in [*spec.keys, spec.timestamp])
    where = f"{s.window(p, bounds.scan_start, bounds.end)} AND {s.key_in(p, keys)}"
    return backend.query_arrow(f"SELECT {', '.join(sel)} FROM {s.source()} WHERE {where} ORDER BY {order}", p.values)


def _offsets(tbl: pa.Table, n_keys: int) -> np.ndarray:
    """Offsets of the runs of equal keys in a table sorted by key."""
    n = tbl.num_rows
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.zeros(n - 1, dtype=bool)
    for j in range(n_keys):
        col = tbl.column(j)
        ne = pc.not_equal(col.slice(1), col.slice(0, n - 1))
        change |= np.asarray(ne.to_numpy(zero_copy_only=False), dtype=bool)
    return np.concatenate([[0], np.flatnonzero(change) + 1, [n]]).astype(np.int64)


def _timestamps(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(col.type) and col.type.tz is not None:
        col = col.cast(pa.timestamp(col.type.unit))  # the instants in UTC, without the zone
    # microseconds unless the column has nanoseconds: nanoseconds end in 2262, and a later
    # timestamp must reach the engine as itself, not wrapped around to 1915
    unit = "ns" if pa.types.is_timestamp(col.type) and col.type.unit == "ns" else "us"
    return np.asarray(col.to_numpy(), dtype=f"datetime64[{unit}]")


def _masked(values: np.ndarray, invalid: np.ndarray, typ: str) -> pa.Array:
    if typ == "double":
        return pa.array(values, type=pa.float64(), mask=invalid | np.isnan(values))
    if typ == "bool":
        return pa.array(values, type=pa.bool_(), mask=invalid)
    return pa.array(values, type=pa.int64(), mask=invalid)


def run_scan(spec: ScanSpec, backend: Backend) -> dict[str, Any]:
    """Run the scan described by ``spec`` through ``backend``; returns the XCom summary."""
    schema = _probe(spec, backend)
    bounds = _Bounds(spec, schema.field(len(spec.keys)).type)
    what = "results table" if spec.target_table else "source table (write_back)"
    try:
        _prepare_output(spec, backend)  # column types checked before anything is read or written
    except Exception as exc:
        if _is_bad_request(exc):
            raise BadArgument(f"Preparing the {what} failed: {_first_line(exc)}") from exc
        raise
    keys, counts = _list_keys(spec, backend, bounds)
    if spec.partitions > 1:
        mine = [i for i, k in enumerate(keys) if key_hash(k) % spec.partitions == spec.partition]
        keys, counts = [keys[i] for i in mine], [counts[i] for i in mine]
    nk = len(spec.keys)
    max_keys = max(1, MAX_PARAMS // (nk + 1) - 4)
    chunks = plan_chunks(keys, counts, spec.chunk_rows, max_keys)
    spec.log(f"{len(keys)} series ({sum(counts)} rows) in partition {spec.partition}/{spec.partitions}, "
             f"{len(chunks)} chunk(s)")
    summary = ScanSummary()
    detected_at = dt.datetime.now(dt.UTC)
    # The write transaction starts with the DDL: a failed run leaves no table, column or index behind.
    ddl = run_ddl(backend, lambda: _prepare_output(spec, backend), what)
    if ddl and spec.write_back and hasattr(backend, "read_on_writer"):
        backend.read_on_writer()  # the source is locked by its ALTER TABLE until the commit
    # A backend whose reads use their own connection (PostgreSQL: ADBC) writes chunk i on a worker
    # thread while chunk i+1 is read and detected: the server works while the engine computes.
    # At most one write is pending, so memory stays at about two chunks.
    pool = ThreadPoolExecutor(max_workers=1) if backend.separate_reader else None
    pending: Future[float] | None = None

    def write(chunk_keys: list[tuple[Any, ...]], out: pa.Table) -> float:
        t = time.perf_counter()
        _write_chunk(spec, backend, bounds, chunk_keys, out)
        return time.perf_counter() - t

    started, every = time.perf_counter(), max(1, len(chunks) // 20)  # progress in ~5% steps
    try:
        for idx in chunks:
            chunk_keys = [keys[i] for i in idx]
            t0 = time.perf_counter()
            tbl = _read_chunk(spec, backend, bounds, chunk_keys)
            t1 = time.perf_counter()
            out = _detect_chunk(spec, tbl, bounds, detected_at, summary)
            del tbl
            summary.seconds["read"] += t1 - t0
            summary.seconds["detect"] += time.perf_counter() - t1
            if pending is not None:
                summary.seconds["write"] += pending.result()
            if pool is not None:
                pending = pool.submit(write, chunk_keys, out)
            else:
                summary.seconds["write"] += write(chunk_keys, out)
            summary.rows_written += out.num_rows
            summary.chunks += 1
            if summary.chunks % every == 0 or summary.chunks == len(chunks):
                spec.log(f"chunk {summary.chunks}/{len(chunks)}: {summary.points} points detected, "
                         f"{summary.anomalies} flagged, {time.perf_counter() - started:.1f} s")
        if pending is not None:
            summary.seconds["write"] += pending.result()
            pending = None
        t0 = time.perf_counter()
        backend.commit()
        summary.seconds["write"] += time.perf_counter() - t0
    except BaseException as exc:
        if pending is not None:
            pending.cancel()
            wait([pending])
        backend.rollback()
        refused = refused_write(exc)
        if refused is exc:
            raise
        raise refused from exc
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return summary.to_dict(spec)


# --------------------------------------------------------------------------- detection of one chunk


def _key_value(key: tuple[Any, ...]) -> Any:
    """A key as reported in XCom: the value for one key column, a list for several."""
    return jsonable(key[0]) if len(key) == 1 else [jsonable(v) for v in key]


def _frame(spec: ScanSpec, ts: np.ndarray, values: dict[str, np.ndarray], offsets: np.ndarray,
           key_of_row: Callable[[int], Any]) -> FrameData:
    """The chunk as the frame-free helpers take it; rows are already in key/timestamp order."""
    return FrameData(
        n_rows=len(ts), codes=None, timestamps=ts, values=values, key_of_row=key_of_row,
        prefixed=len(spec.values) > 1, layout=Layout(len(ts), None, offsets, ts),
    )


def _arrow(col: Column, rows: np.ndarray | slice | None = None) -> pa.Array:
    """A result column as Arrow: nulls where the series was invalid (and for NaN floats)."""
    values = col.values if rows is None else col.values[rows]
    mask = np.zeros(len(values), dtype=bool) if col.mask is None else (col.mask if rows is None else col.mask[rows])
    if values.dtype.kind == "f":
        mask = mask | np.isnan(values)
    return pa.array(values, mask=mask)


def _detect_chunk(
    spec: ScanSpec, tbl: pa.Table, bounds: _Bounds, detected_at: dt.datetime, summary: ScanSummary
) -> pa.Table:
    """Detect every series of a chunk (sorted by key, timestamp) with ONE engine batch call.

    Conversion and the engine call are :mod:`ad_pipeline.engine.layout`'s (shared with the pandas and
    polars adapters); this builds the Arrow table of rows to write.
    """
    nk, nv = len(spec.keys), len(spec.values)
    offs = _offsets(tbl, nk)
    n_series = len(offs) - 1
    key_cols = [tbl.column(j) for j in range(nk)]
    ts = _timestamps(tbl.column(nk))
    values = {
        v: np.asarray(tbl.column(nk + 1 + i).to_numpy(zero_copy_only=False), dtype=np.float64)
        for i, v in enumerate(spec.values)
    }

    def key_at(row: int) -> tuple[Any, ...]:
        return tuple(c[int(row)].as_py() for c in key_cols)

    def key_of_row(row: int) -> Any:
        key = key_at(row)
        return key[0] if nk == 1 else key

    summary.series += nv * n_series
    if spec.kind == "last":
        return _detect_last_chunk(spec, tbl, ts, values, offs, key_at, key_of_row, bounds, detected_at, summary)

    data = _frame(spec, ts, values, offs, key_of_row)
    if spec.kind == "entire":
        cols = {c.name: c for c in run_detect(data, errors="coerce", **spec.params)}
        flag = "is_anomaly"
    else:
        cols = {c.name: c for c in run_change_points(data, errors="coerce", **spec.params)}
        flag = "is_change_point"
    keep = np.ones(len(ts), dtype=bool) if bounds.write_start64 is None else ts >= bounds.write_start64
    rows = np.flatnonzero(keep)
    starts = offs[:-1]
    base = {spec.keys[j]: key_cols[j].take(pa.array(rows)) for j in range(nk)}
    base[spec.timestamp] = tbl.column(nk).take(pa.array(rows))
    names = [*RESULT_COLUMNS[spec.kind]] + (["period"] if spec.kind == "entire" else [])
    parts, side_by_side = [], {}
    for vcol in spec.values:
        pre = f"{vcol}_" if nv > 1 else ""
        code, msg = cols[pre + "anomaly_error_code"], cols[pre + "anomaly_error"]
        for s in np.flatnonzero(code.mask[starts]) if code.mask is not None else []:
            _report_invalid(spec, summary, key_at(starts[s]), vcol, code.values[starts[s]], msg.values[starts[s]])
        flags = _arrow(cols[pre + flag], rows)
        summary.points += len(rows)
        summary.anomalies += int(pc.sum(flags).as_py() or 0)
        result = {n: _arrow(cols[pre + n], rows) for n in names}
        if spec.write_back:
            side_by_side.update({pre + n: a for n, a in result.items()})
        else:
            t = dict(base)
            if nv > 1:
                t["metric"] = pa.repeat(pa.scalar(vcol), len(rows))
            t["value"] = pa.array(values[vcol][rows], mask=np.isnan(values[vcol][rows]))
            parts.append(pa.table({**t, **result}))
    out = pa.table({**base, **side_by_side}) if spec.write_back else pa.concat_tables(parts)
    return _with_meta(out, spec.run_id, detected_at)


def _report_invalid(spec: ScanSpec, summary: ScanSummary, key: tuple[Any, ...], vcol: str, code: Any, msg: Any) -> None:
    summary.invalid_count += 1
    if len(summary.invalid) < MAX_ERRORS_REPORTED:
        entry = {"key": _key_value(key), "code": code, "message": msg}
        if len(spec.values) > 1:
            entry["value"] = vcol
        summary.invalid.append(entry)


def _detect_last_chunk(
    spec: ScanSpec,
    tbl: pa.Table,
    ts: np.ndarray,
    values: dict[str, np.ndarray],
    offs: np.ndarray,
    key_at: Callable[[int], tuple[Any, ...]],
    key_of_row: Callable[[int], Any],
    bounds: _Bounds,
    detected_at: dt.datetime,
    summary: ScanSummary,
) -> pa.Table:
    """The newest point of each series, judged from its last ``window`` points.

    With ``window="suggested"`` a first batch call over the whole history yields each series'
    ``suggested_window`` (the longest among several value columns) and a second batch call judges
    the newest point from that many points.
    """
    nk, nv = len(spec.keys), len(spec.values)
    lens = np.diff(offs)
    pre = {v: (f"{v}_" if nv > 1 else "") for v in spec.values}
    if spec.last_window == "suggested":
        _, first = run_last(_frame(spec, ts, values, offs, key_of_row), errors="coerce", **spec.params)
        by_name = {c.name: c.values for c in first}
        win = np.max([by_name[pre[v] + "suggested_window"] for v in spec.values], axis=0)
        win = np.where(win > 0, win, lens)
    else:
        win = np.full(len(lens), int(spec.last_window))
    keep_len = np.minimum(lens, win)
    pos = np.arange(len(ts)) - np.repeat(offs[:-1], lens)
    rows_kept = np.flatnonzero(pos >= np.repeat(lens - keep_len, lens))
    new_offs = np.concatenate([[0], np.cumsum(keep_len)]).astype(np.int64)
    data = _frame(spec, ts[rows_kept], {v: a[rows_kept] for v, a in values.items()}, new_offs,
                  lambda r: key_of_row(rows_kept[r]))
    last_rows, cols = run_last(data, errors="coerce", **spec.params)
    newest = rows_kept[last_rows]  # rows of the chunk
    in_window = np.ones(len(newest), dtype=bool)
    if bounds.write_start64 is not None:
        in_window = ts[newest] >= bounds.write_start64
    summary.stale_series += int(nv * np.count_nonzero(~in_window))
    sel = np.flatnonzero(in_window)
    take = pa.array(newest[sel])
    by = {c.name: c for c in cols}
    base = {spec.keys[j]: tbl.column(j).take(take) for j in range(nk)}
    base[spec.timestamp] = tbl.column(nk).take(take)
    names = list(RESULT_COLUMNS["last"]) + ["period"]
    parts, side_by_side, anomalous = [], {}, np.zeros(len(newest), dtype=bool)
    for vcol in spec.values:
        code, msg = by[pre[vcol] + "anomaly_error_code"], by[pre[vcol] + "anomaly_error"]
        for s in np.flatnonzero(code.mask) if code.mask is not None else []:
            _report_invalid(spec, summary, key_at(newest[s]), vcol, code.values[s], msg.values[s])
        flags = by[pre[vcol] + "is_anomaly"]
        is_anom = flags.values.astype(bool) & (~flags.mask if flags.mask is not None else True)
        anomalous |= is_anom & in_window
        summary.points += len(sel)
        summary.anomalies += int(np.count_nonzero(is_anom[sel]))
        result = {n: _arrow(by[pre[vcol] + n], sel) for n in names}
        if spec.write_back:
            side_by_side.update({pre[vcol] + n: a for n, a in result.items()})
        else:
            v = values[vcol][newest[sel]]
            t = dict(base)
            if nv > 1:
                t["metric"] = pa.repeat(pa.scalar(vcol), len(sel))
            t["value"] = pa.array(v, mask=np.isnan(v))
            parts.append(pa.table({**t, **result}))
    summary.anomalous_keys.extend(_key_value(key_at(newest[s])) for s in np.flatnonzero(anomalous))
    out = pa.table({**base, **side_by_side}) if spec.write_back else pa.concat_tables(parts)
    return _with_meta(out, spec.run_id, detected_at)


def _with_meta(out: pa.Table, run_id: str, detected_at: dt.datetime) -> pa.Table:
    n = out.num_rows
    out = out.append_column("run_id", pa.repeat(pa.scalar(run_id, pa.string()), n))
    return out.append_column("detected_at", pa.repeat(pa.scalar(detected_at, pa.timestamp("us", tz="UTC")), n))


# --------------------------------------------------------------------------- writes


def _write_chunk(spec: ScanSpec, backend: Backend, bounds: _Bounds, keys: Sequence[tuple[Any, ...]], out: pa.Table) -> None:
    s = _Sql(spec, backend, read=False)
    if spec.write_back:
        match = [*spec.keys, spec.timestamp]
        backend.update_from_arrow(backend.qualified(spec.table or ()), match, out)
        return
    target = backend.qualified(spec.target_table or ())
    p = Params(backend.write_style)
    if spec.kind == "last":
        if out.num_rows:
            pairs = list(zip(*(out.column(c).to_pylist() for c in [*spec.keys, spec.timestamp]), strict=True))
            backend.execute(f"DELETE FROM {target} WHERE {s.key_in(p, pairs, extra=[spec.timestamp])}", p.values)
    else:
        where = f"{s.window(p, bounds.write_start, bounds.end)} AND {s.key_in(p, keys)}"
        backend.execute(f"DELETE FROM {target} WHERE {where}", p.values)
    backend.insert_arrow(target, out)


__all__ = ["ScanSpec", "run_scan", "key_hash", "plan_chunks", "KINDS", "RESULT_COLUMNS", "AnomalyDetectorError"]
