"""The command line's scan: a DuckDB table, or a CSV / Parquet file, through the warehouse scan.

The source becomes a temporary view (``__ad_source``) that adds the timestamp as the engine reads it
(``__ad_ts``: a cast, or the engine's own parser for text); :mod:`.scan` lists its keys and reads
chunks of whole series (:func:`~.scan.list_chunks`, :func:`~.scan.read_chunk`, as for the Airflow
operators), and each chunk goes to the engine as batches of at most :data:`ENGINE_BATCH_SERIES`
series (:func:`ad_pipeline.arrow.detect_arrow`). The results go to the writers of :mod:`.outputs`.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AnomalyDetectorError
from . import InputError
from .backends import DuckDBBackend
from .scan import list_chunks, open_scan, read_chunk
from .spec import Bounds, ScanSpec

ENGINE_BATCH_SERIES = 256  # at most this many series per engine call inside a chunk
PROGRESS_STEPS = 20  # and at most 1/20 of all series, so that progress moves in about 5% steps
SOURCE_VIEW = "__ad_source"
TS = "__ad_ts"  # the timestamp as the engine reads it

_NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
                      r"FLOAT|DOUBLE|REAL|DECIMAL.*)$")  # fmt: skip
_TEMPORAL = re.compile(r"^(TIMESTAMP.*|DATE|VARCHAR)$")
_PLAIN = re.compile(r"^(?!.*(\[|STRUCT|MAP|UNION)).*$")  # a key compares as one value: no list, struct, map


def quote(name: str) -> str:
    '''A quoted SQL identifier (inner quotes doubled); ``a.b`` is quoted part by part.

    >>> print(quote('metrics'), quote('main.my "t"'))
    "metrics" "main"."my ""t"""
    '''
    return ".".join('"' + part.replace('"', '""') + '"' for part in str(name).split("."))


def _literal(text: str) -> str:
    """A SQL string literal (inner quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class Source:
    """Where rows come from: a FROM-clause (identifiers quoted, values inlined as literals)."""

    con: Any
    from_sql: str
    label: str
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, DuckDB type)

    def resolve(self, wanted: str, option: str, pattern: re.Pattern[str] | None, what: str) -> str:
        """The real name of column ``wanted`` (case-insensitive), or an InputError naming it."""
        by_lower = {n.lower(): (n, t) for n, t in self.columns}
        hit = by_lower.get(wanted.lower())
        if hit is None:
            names = ", ".join(n for n, _ in self.columns)
            raise InputError(
                f"column {wanted!r} ({option}) not found in {self.label}; its columns are: {names}"
            )
        if pattern is not None and not pattern.match(hit[1]):
            raise InputError(f"column {hit[0]!r} ({option}) must be {what}, got {hit[1]}")
        return hit[0]


_TEXT_TIMESTAMP = "__ad_text_timestamp"
_TRY_TEXT_TIMESTAMP = "__ad_try_text_timestamp"  # errors="coerce": an unreadable text is NULL


def _text_timestamps(texts: Any) -> Any:
    """DuckDB UDF (Arrow in, Arrow out): text timestamps read by the engine's one parser, as UTC."""
    return _read_text_timestamps(texts, coerce=False)


def _try_text_timestamps(texts: Any) -> Any:
    """The same UDF for errors="coerce": a text no form reads is NULL (its series alone is invalid)."""
    return _read_text_timestamps(texts, coerce=True)


def _read_text_timestamps(texts: Any, *, coerce: bool) -> Any:
    import pyarrow as pa

    from ..engine.granularity import as_datetime64

    valid = np.asarray(texts.is_valid())
    out = np.full(len(texts), np.datetime64("NaT"), dtype="datetime64[us]")
    if valid.any():
        given = np.asarray(texts.to_numpy(zero_copy_only=False), dtype=object)[valid].astype(str)
        try:
            out[valid] = as_datetime64(given, field="--timestamp").astype("datetime64[us]")
        except AnomalyDetectorError:
            if not coerce:
                raise
            out[valid] = [_one_timestamp_or_nat(t) for t in given]
    return pa.array(out, type=pa.timestamp("us"), mask=np.isnat(out))


def _one_timestamp_or_nat(text: str) -> np.datetime64:
    from ..engine.granularity import as_datetime64

    try:
        return as_datetime64([text], field="--timestamp").astype("datetime64[us]")[0]
    except AnomalyDetectorError:
        return np.datetime64("NaT", "us")



def _connect(path: str | None, *, read_only: bool, memory_limit: str) -> Any:
    import duckdb

    con = duckdb.connect(path or ":memory:", read_only=read_only)
    for name, udf in ((_TEXT_TIMESTAMP, _text_timestamps), (_TRY_TEXT_TIMESTAMP, _try_text_timestamps)):
        con.create_function(name, udf, ["VARCHAR"], "TIMESTAMP", type="arrow",  # type: ignore[call-overload]
                            null_handling="special")
    try:
        con.execute("SET memory_limit = ?", [memory_limit])
    except duckdb.Error as exc:
        con.close()
        raise InputError(
            f"--memory-limit {memory_limit!r} is not a valid DuckDB memory limit ({first_line(exc)})"
        ) from None
    return con


def open_source(args: Any) -> Source:
    """Open the database / file named by the options and describe its columns."""
    import duckdb

    if args.input:
        path = Path(args.input)
        if not path.is_file():
            raise InputError(f"input file {args.input!r} not found")
        if args.db and not args.into:
            raise InputError("--db with --input is only for writing results with --into")
        con = _connect(args.db, read_only=False, memory_limit=args.memory_limit)
        suffixes = "".join(path.suffixes).lower()
        try:
            if ".parquet" in suffixes or suffixes.endswith(".pq"):
                src = Source(con, f"read_parquet({_literal(str(path))})", f"file {args.input!r}")
            elif ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
                # a CSV is parsed once into a temporary table, not once per chunk
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE __ad_input AS SELECT * FROM read_csv(?)", [str(path)]
                )
                src = Source(con, "__ad_input", f"file {args.input!r}")
            else:
                raise InputError(f"input file {args.input!r} must end in .parquet or .csv")
        except InputError:
            con.close()
            raise
        except duckdb.Error as exc:
            con.close()
            raise _unreadable(args.input, exc) from None
    else:
        if not args.db or not args.table:
            raise InputError("give --db FILE and --table NAME, or --input FILE")
        if not Path(args.db).is_file():
            raise InputError(f"database file {args.db!r} not found")
        con = _connect(args.db, read_only=not args.into, memory_limit=args.memory_limit)
        src = Source(con, quote(args.table), f"table {args.table!r}")
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {src.from_sql}").fetchall()
    except duckdb.CatalogException:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() UNION SELECT view_name "
                                            "FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()]  # fmt: skip
        con.close()
        raise InputError(
            f"{src.label} not found in {args.db!r}; it has: {', '.join(tables) or 'no tables'}"
        ) from None
    except duckdb.Error as exc:
        con.close()
        if args.input:
            raise _unreadable(args.input, exc) from None
        raise
    src.columns = [(r[0], r[1]) for r in rows]
    return src


def _unreadable(path: str, exc: BaseException) -> InputError:
    """A file DuckDB cannot read (empty, corrupt, binary, wrong encoding) is bad input."""
    return InputError(f"input file {path!r} could not be read: {type(exc).__name__}: {first_line(exc)}")


def table_identity(con: Any, name: str) -> tuple[str, str, str]:
    """(catalog, schema, table) that DuckDB resolves ``name`` to, lower-cased (DuckDB names are case-insensitive).

    ``t`` is in the current catalog and schema; ``s.t`` in schema ``s`` of the current catalog, or in
    the default schema of catalog ``s`` when no such schema exists (DuckDB refuses a name that is both);
    ``c.s.t`` is complete. Catalogs and schemas are asked of the database.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> table_identity(con, "metrics") == table_identity(con, "memory.main.METRICS") == table_identity(con, "main.metrics")
    True
    >>> table_identity(con, "other.metrics") == table_identity(con, "metrics")
    False
    """
    parts = str(name).split(".")
    if not 1 <= len(parts) <= 3 or not all(p.strip() for p in parts):
        raise InputError(f"table name {name!r} must be table, schema.table or catalog.schema.table")
    catalog, schema = con.execute("SELECT current_database(), current_schema()").fetchall()[0]
    if len(parts) == 3:
        catalog, schema = parts[0], parts[1]
    elif len(parts) == 2:
        schema = parts[0]
        schemas = con.execute(
            "SELECT count(*) FROM duckdb_schemas() WHERE lower(database_name) = lower(?) AND lower(schema_name) = lower(?)",
            [catalog, schema],
        ).fetchall()[0][0]
        if not schemas and con.execute(
            "SELECT count(*) FROM duckdb_databases() WHERE lower(database_name) = lower(?)", [parts[0]]
        ).fetchall()[0][0]:
            catalog, schema = parts[0], "main"  # DuckDB's default schema of every catalog
    return (str(catalog).lower(), str(schema).lower(), parts[-1].lower())



# --------------------------------------------------------------------------- the scan


@dataclass
class Plan:
    """Resolved columns, the warehouse scan of the source view and its chunks of whole series."""

    keys: list[str]
    ts: str
    value: str
    spec: ScanSpec
    backend: DuckDBBackend
    bounds: Bounds
    chunks: list[list[tuple[Any, ...]]]
    n_series: int
    null_key_rows: int

    def pieces(self) -> Iterator[tuple[Any, np.ndarray, int]]:
        """(sorted source rows, series offsets, n_series) for every engine batch, chunk by chunk."""
        from ..arrow import run_offsets

        for chunk_keys in self.chunks or [[]]:
            table = read_chunk(self.spec, self.backend, self.bounds, chunk_keys)
            offsets = run_offsets(table, self.keys)
            step = min(ENGINE_BATCH_SERIES, max(1, -(-self.n_series // PROGRESS_STEPS)))
            for a in range(0, max(len(offsets) - 1, 1), step):
                b = min(a + step, len(offsets) - 1)
                lo_row, hi_row = int(offsets[a]), int(offsets[b])
                yield table.slice(lo_row, hi_row - lo_row), offsets[a : b + 1] - lo_row, b - a


def make_plan(src: Source, kind: str, keys: list[str], timestamp: str, value: str, chunk_rows: int,
              coerce: bool) -> Plan:
    """Resolve the columns, create the source view and list the chunks (``coerce``: an unreadable
    timestamp is NULL, so only its series is invalid)."""
    keys = [src.resolve(k, "--key", _PLAIN, "a column of a plain type (not a list, struct or map)") for k in keys]
    ts = src.resolve(timestamp, "--timestamp", _TEMPORAL, "a timestamp, date or text column")
    value = src.resolve(value, "--value", _NUMERIC, "numeric")
    if len({*keys, ts, value}) != len(keys) + 2:
        raise InputError("--key, --timestamp and --value must name different columns")
    if chunk_rows < 1:
        raise InputError(f"--chunk-rows must be at least 1, got {chunk_rows}")
    if dict(src.columns)[ts] == "VARCHAR":  # text: read by the engine's timestamp parser (ISO-8601, .NET dates)
        ts_sql = f"{_TRY_TEXT_TIMESTAMP if coerce else _TEXT_TIMESTAMP}({quote(ts)})"
    else:
        ts_sql = f"{'TRY_CAST' if coerce else 'CAST'}({quote(ts)} AS TIMESTAMP)"
    src.con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(SOURCE_VIEW)} AS "
                    f"SELECT *, {ts_sql} AS {quote(TS)} FROM {src.from_sql}")
    not_null = " AND ".join(f"{quote(c)} IS NOT NULL" for c in keys)
    null_rows = src.con.execute(f"SELECT count(*) FROM {src.from_sql} WHERE NOT ({not_null})").fetchall()[0][0]
    spec = ScanSpec(kind=kind, keys=keys, timestamp=TS, values=[value], table=(SOURCE_VIEW,),
                    chunk_rows=chunk_rows, carry=[ts, value], keep_null_timestamps=True)
    backend = DuckDBBackend(conn=src.con)
    bounds = open_scan(spec, backend)
    chunks = list_chunks(spec, backend, bounds)
    return Plan(keys, ts, value, spec, backend, bounds, chunks, sum(map(len, chunks)), int(null_rows))


def detect_piece(kind: str, plan: Plan, part: Any, offsets: np.ndarray, errors: str, params: dict[str, Any]) -> Any:
    """ONE engine batch call over a piece; returns the source's key, timestamp and value columns plus
    the result columns (the error columns with ``errors="coerce"``)."""
    from ..arrow import detect_arrow, float_values

    values = float_values(part.column("ad_value_0"))
    ts = part.column(TS).to_numpy()
    cols = [part.column(c) for c in plan.keys]

    def label(i: int) -> Any:
        vals = tuple(c[int(offsets[i])].as_py() for c in cols)
        return vals[0] if len(vals) == 1 else vals

    struct = detect_arrow(kind, values, offsets, ts, errors=errors, keys=label, **params)
    return _result_table(kind, part, offsets, struct, errors, plan)


@dataclass
class Stats:
    """What the summary reports, gathered chunk by chunk."""

    series: int = 0
    points: int = 0
    flagged: int = 0
    series_flagged: int = 0
    invalid: int = 0
    first_error: str | None = None
    top: list[tuple[float, int, Any]] = field(default_factory=list)  # heap of (score, tiebreak, table)



def _result_table(kind: str, part: Any, offsets: np.ndarray, struct: Any, errors: str, plan: Plan) -> Any:
    """Key, timestamp and value columns of the source plus the result columns."""
    import pyarrow as pa

    base = part.select([*plan.keys, plan.ts, plan.value])
    if kind == "last":
        base = base.take(pa.array(offsets[1:] - 1))
    names = [f.name for f in struct.type]
    arrays = struct.flatten()
    cols = {
        n: a
        for n, a in zip(names, arrays, strict=True)
        if errors == "coerce" or not n.startswith("anomaly_error")
    }
    clash = set(cols) & set(base.column_names)
    if clash:
        raise InputError(f"source column(s) {sorted(clash)} clash with result columns; rename them first")
    for n, a in cols.items():
        base = base.append_column(n, a)
    return base



def record(stats: Stats, kind: str, table: Any, offsets: np.ndarray, plot_top: int) -> None:
    import pyarrow.compute as pc

    k = len(offsets) - 1
    stats.series += k
    stats.points += int(offsets[-1])
    if "anomaly_error_code" in table.column_names:
        codes = table.column("anomaly_error_code")
        per_series = codes.take(offsets[:-1]) if kind != "last" else codes
        bad = per_series.to_pylist()
        stats.invalid += sum(c is not None for c in bad)
        if stats.first_error is None:
            for i, c in enumerate(bad):
                if c is not None:
                    msg = (
                        table.column("anomaly_error")
                        .take([int(offsets[i]) if kind != "last" else i])[0]
                        .as_py()
                    )
                    stats.first_error = f"{c}: {msg}"
                    break
    flag = "is_change_point" if kind == "change_points" else "is_anomaly"
    flags = np.asarray(pc.fill_null(table.column(flag), False).to_numpy(zero_copy_only=False), dtype=bool)
    stats.flagged += int(flags.sum())
    if kind != "last":
        per_series = (
            np.add.reduceat(flags.astype(np.int64), offsets[:-1])
            if len(flags)
            else np.zeros(0, dtype=np.int64)
        )
        stats.series_flagged += int(np.count_nonzero(per_series))
        if plot_top > 0:
            for i in np.argsort(-per_series, kind="stable")[:plot_top]:
                if per_series[i] == 0:
                    break
                item = (
                    float(per_series[i]),
                    stats.series + int(i),
                    table.slice(int(offsets[i]), int(offsets[i + 1] - offsets[i])),
                )
                if len(stats.top) < plot_top:
                    heapq.heappush(stats.top, item)
                elif item[0] > stats.top[0][0]:
                    heapq.heapreplace(stats.top, item)
    else:
        stats.series_flagged += int(flags.sum())
