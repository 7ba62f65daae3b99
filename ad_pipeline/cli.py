"""The ``ad-pipeline`` command: scan every series of a DuckDB table (or CSV/Parquet file) and write the results.

::

    ad-pipeline demo                                   # build a demo warehouse, scan it, summarise
    ad-pipeline scan --db warehouse.duckdb --table metrics --key key --timestamp ts --value value \\
                     --into metrics_anomalies           # results table, replaced in one transaction
    ad-pipeline scan --input metrics.parquet --out anomalies.parquet
    ad-pipeline last ...  /  ad-pipeline change-points ...   # same options

The source is read in chunks of whole series (key ranges, ``--chunk-rows`` rows at most), so
memory stays bounded whatever the table size; each chunk goes to the engine as one batch.
Exit status: 0 done, 2 bad input (one line naming the problem: a missing column, a parameter
out of range, ...), 1 anything else. Subcommands live in :data:`COMMANDS` (name -> add_arguments,
run), so adding one is a few lines.

>>> main(["scan", "--input", "no/such/file.parquet", "--quiet"])
2
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AnomalyDetectorError, BadArgument, MissingDependency

PROG = "ad-pipeline"
DEFAULT_CHUNK_ROWS = 1_000_000
CHECKPOINT_ROWS = 1_000_000  # --into: DuckDB CHECKPOINT after this many written rows (bounds memory)
ENGINE_BATCH_SERIES = 256  # at most this many series per engine call inside a chunk
PROGRESS_STEPS = 20  # and at most 1/20 of all series, so that progress moves in about 5% steps
DEMO_DB = "ad_pipeline_demo.duckdb"
DEMO_SENSITIVITY = 85.0

_NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
                      r"FLOAT|DOUBLE|REAL|DECIMAL.*)$")  # fmt: skip
_TEMPORAL = re.compile(r"^(TIMESTAMP.*|DATE|VARCHAR)$")


class InputError(Exception):
    """Bad input from the user (exit status 2): the message names the problem."""


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, its options and what it runs (returns the exit status)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------- options


def _add_source_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("source")
    src.add_argument("--db", help="DuckDB database file (read from --table; written with --into)")
    src.add_argument("--table", help="table or view to scan (in --db)")
    src.add_argument("--input", help="CSV or Parquet file to scan instead of --db/--table")
    src.add_argument(
        "--key",
        action="append",
        help="series key column (repeat for several; default: key)",
        metavar="COLUMN",
    )
    src.add_argument("--timestamp", default="ts", help="timestamp column (default: ts)", metavar="COLUMN")
    src.add_argument("--value", default="value", help="value column (default: value)", metavar="COLUMN")
    out = p.add_argument_group("output")
    out.add_argument(
        "--into", help="results table in --db, replaced atomically (one transaction)", metavar="TABLE"
    )
    out.add_argument(
        "--out", help="results file: .parquet or .csv (written to a temporary file, then renamed)"
    )
    out.add_argument("--plot", help="write PNGs of the most anomalous series to this folder", metavar="DIR")
    out.add_argument(
        "--plot-top", type=int, default=6, help="how many series --plot draws (default 6)", metavar="N"
    )
    run = p.add_argument_group("run")
    run.add_argument(
        "--errors",
        choices=("coerce", "raise"),
        default="coerce",
        help="coerce (default): an invalid series gets NULL results and anomaly_error_code/anomaly_error; "
        "raise: stop at the first invalid series",
    )
    run.add_argument(
        "--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows read per chunk", metavar="N"
    )
    run.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit (default 1GB)")


def _add_detect_parameters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("detection parameters (default: the engine's)")
    g.add_argument(
        "--granularity", help="yearly .. microsecond, none (default: inferred from the timestamps)"
    )
    g.add_argument("--custom-interval", type=int)
    g.add_argument("--period", type=int, help="season length in points (default: detected; 0: none)")
    g.add_argument("--sensitivity", type=float, help="0-100, higher flags more (default 99)")
    g.add_argument("--max-anomaly-ratio", type=float, help="0-0.5 (default 0.25)")
    g.add_argument("--impute-mode", help="auto, previous, linear, fixed, zero, notFill (default auto)")
    g.add_argument("--impute-fixed-value", type=float)
    g.add_argument("--boundary-version", help="V1, V2, V3 (default V1)")
    g.add_argument("--method", help="model (default azure)")


def _add_change_point_parameters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("change-point parameters (default: the engine's)")
    g.add_argument(
        "--granularity", help="yearly .. microsecond, none (default: inferred from the timestamps)"
    )
    g.add_argument("--custom-interval", type=int)
    g.add_argument("--period", type=int)
    g.add_argument("--stable-trend-window", type=int)
    g.add_argument("--threshold", type=float)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no summary (errors only)")
    p.add_argument("--traceback", action="store_true", help=argparse.SUPPRESS)


_DETECT_NAMES = ("granularity", "custom_interval", "period", "sensitivity", "max_anomaly_ratio", "impute_mode",
                 "impute_fixed_value", "boundary_version", "method")  # fmt: skip
_CP_NAMES = ("granularity", "custom_interval", "period", "stable_trend_window", "threshold")


def _parameters(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


# --------------------------------------------------------------------------- the three kinds of scan


@dataclass(frozen=True)
class Kind:
    """What a scan computes: the engine call and how its result becomes output columns."""

    name: str
    parameter_names: tuple[str, ...]
    per_row: bool  # one output row per input row (entire, change points) or per series (last)

    def check(self, params: dict[str, Any]) -> None:
        from .engine.params import check_change_point_params, check_params

        (check_change_point_params if self.name == "change_points" else check_params)(**params)

    def detect(
        self, values: Any, offsets: Any, ts: Any, errors: str, keys: Any, params: dict[str, Any]
    ) -> Any:
        """Engine batch call -> Arrow struct array (flat for per-row kinds, one entry per series for last)."""
        from .duckdb import detect_arrow

        return detect_arrow(self.name, values, offsets, ts, errors=errors, keys=keys, **params)


ENTIRE = Kind("entire", _DETECT_NAMES, per_row=True)
LAST = Kind("last", _DETECT_NAMES, per_row=False)
CHANGE_POINTS = Kind("change_points", _CP_NAMES, per_row=True)


# --------------------------------------------------------------------------- source


def quote(name: str) -> str:
    '''A quoted SQL identifier (inner quotes doubled); ``a.b`` is quoted part by part.

    >>> print(quote('metrics'), quote('main.my "t"'))
    "metrics" "main"."my ""t"""
    '''
    from .duckdb import quote_identifier

    return ".".join(quote_identifier(part) for part in str(name).split("."))


@dataclass
class Source:
    """Where rows come from: a FROM-clause (identifiers quoted, values as ``?`` parameters)."""

    con: Any
    from_sql: str
    params: list[Any]
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

    from .engine.granularity import as_datetime64

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
    from .engine.granularity import as_datetime64

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
            f"--memory-limit {memory_limit!r} is not a valid DuckDB memory limit ({_first_line(exc)})"
        ) from None
    return con


def open_source(args: argparse.Namespace) -> Source:
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
                src = Source(con, "read_parquet(?)", [str(path)], f"file {args.input!r}")
            elif ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
                # a CSV is parsed once into a temporary table, not once per chunk
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE __ad_input AS SELECT * FROM read_csv(?)", [str(path)]
                )
                src = Source(con, "__ad_input", [], f"file {args.input!r}")
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
        src = Source(con, quote(args.table), [], f"table {args.table!r}")
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {src.from_sql}", src.params).fetchall()
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
    return InputError(f"input file {path!r} could not be read: {type(exc).__name__}: {_first_line(exc)}")


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


# --------------------------------------------------------------------------- scan


@dataclass
class Plan:
    """Resolved columns, the key ranges of the chunks and the per-chunk query."""

    keys: list[str]
    ts: str
    value: str
    chunks: list[tuple[tuple[Any, ...], tuple[Any, ...], int, int]]  # (first key, last key, n_series, n_rows)
    n_series: int
    n_rows: int
    null_key_rows: int
    coerce: bool = False  # errors="coerce": an unreadable timestamp is NULL, so only its series is invalid
    ts_text: bool = False  # a text column: read by the engine's timestamp parser (ISO-8601, .NET dates)

    def query(self, src: Source) -> str:
        k = ", ".join(quote(c) for c in self.keys)
        if self.ts_text:
            ts = f"{_TRY_TEXT_TIMESTAMP if self.coerce else _TEXT_TIMESTAMP}({quote(self.ts)})"
        else:
            ts = f"{'TRY_CAST' if self.coerce else 'CAST'}({quote(self.ts)} AS TIMESTAMP)"
        return (
            f"SELECT {k}, {quote(self.ts)}, {quote(self.value)}, {ts} AS __ad_ts, "
            f"CAST({quote(self.value)} AS DOUBLE) AS __ad_value FROM {src.from_sql} "
            f"WHERE ({_key_bound(self.keys, '>')}) AND ({_key_bound(self.keys, '<')}) ORDER BY {k}, __ad_ts"
        )

    def bound_params(self, lo: tuple[Any, ...], hi: tuple[Any, ...]) -> list[Any]:
        """The parameters of :meth:`query` for the key range ``lo .. hi`` (inclusive)."""
        return [*_bound_values(lo), *_bound_values(hi)]


def _key_bound(keys: list[str], op: str) -> str:
    """``(k1, k2, ...) >= (?, ?, ...)`` (or ``<=``) spelled out lexicographically, one ``?`` per use.

    >>> _key_bound(["a", "b"], ">")
    '"a" > ? OR ("a" = ? AND ("b" >= ?))'
    """
    first = quote(keys[0])
    if len(keys) == 1:
        return f"{first} {op}= ?"
    return f"{first} {op} ? OR ({first} = ? AND ({_key_bound(keys[1:], op)}))"


def _bound_values(key: tuple[Any, ...]) -> list[Any]:
    """The parameters of :func:`_key_bound` for one bound: each key value but the last appears twice."""
    out: list[Any] = []
    for v in key[:-1]:
        out += [v, v]
    return [*out, key[-1]]


def make_plan(src: Source, args: argparse.Namespace) -> Plan:
    keys = [src.resolve(k, "--key", None, "") for k in (args.key or ["key"])]
    ts = src.resolve(args.timestamp, "--timestamp", _TEMPORAL, "a timestamp, date or text column")
    value = src.resolve(args.value, "--value", _NUMERIC, "numeric")
    if len({*keys, ts, value}) != len(keys) + 2:
        raise InputError("--key, --timestamp and --value must name different columns")
    if args.chunk_rows < 1:
        raise InputError(f"--chunk-rows must be at least 1, got {args.chunk_rows}")
    k = ", ".join(quote(c) for c in keys)
    not_null = " AND ".join(f"{quote(c)} IS NOT NULL" for c in keys)
    counts = src.con.sql(
        f"SELECT {k}, count(*) AS __ad_n FROM {src.from_sql} WHERE {not_null} GROUP BY ALL ORDER BY ALL",
        params=src.params or None,
    ).to_arrow_table()
    null_rows = src.con.execute(
        f"SELECT count(*) FROM {src.from_sql} WHERE NOT ({not_null})", src.params
    ).fetchall()[0][0]
    n = counts.column("__ad_n").to_numpy()
    key_cols = [counts.column(i) for i in range(len(keys))]
    chunks = []
    start, rows = 0, 0
    for i in range(len(n)):
        rows += int(n[i])
        if rows >= args.chunk_rows or i == len(n) - 1:
            lo = tuple(c[start].as_py() for c in key_cols)
            hi = tuple(c[i].as_py() for c in key_cols)
            chunks.append((lo, hi, i - start + 1, rows))
            start, rows = i + 1, 0
    ts_text = dict(src.columns)[ts] == "VARCHAR"
    return Plan(keys, ts, value, chunks, len(n), int(n.sum()), int(null_rows),
                coerce=args.errors == "coerce", ts_text=ts_text)


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


def _series_offsets(table: Any, keys: list[str]) -> np.ndarray:
    """Offsets of the runs of equal keys in a table sorted by key (vectorized)."""
    import pyarrow.compute as pc

    n = table.num_rows
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = np.zeros(n - 1, dtype=bool)
    for c in keys:
        col = table.column(c)
        change |= np.asarray(pc.fill_null(pc.not_equal(col.slice(1), col.slice(0, n - 1)), True))
    return np.concatenate(([0], np.flatnonzero(change) + 1, [n])).astype(np.int64)


def _result_table(kind: Kind, part: Any, offsets: np.ndarray, struct: Any, errors: str, plan: Plan) -> Any:
    """Key, timestamp and value columns of the source plus the result columns."""
    import pyarrow as pa

    base = part.select([*plan.keys, plan.ts, plan.value])
    if not kind.per_row:
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


def _record(stats: Stats, kind: Kind, table: Any, offsets: np.ndarray, plot_top: int) -> None:
    import pyarrow.compute as pc

    k = len(offsets) - 1
    stats.series += k
    stats.points += int(offsets[-1])
    if "anomaly_error_code" in table.column_names:
        codes = table.column("anomaly_error_code")
        per_series = codes.take(offsets[:-1]) if kind.per_row else codes
        bad = per_series.to_pylist()
        stats.invalid += sum(c is not None for c in bad)
        if stats.first_error is None:
            for i, c in enumerate(bad):
                if c is not None:
                    msg = (
                        table.column("anomaly_error")
                        .take([int(offsets[i]) if kind.per_row else i])[0]
                        .as_py()
                    )
                    stats.first_error = f"{c}: {msg}"
                    break
    flag = "is_change_point" if kind.name == "change_points" else "is_anomaly"
    flags = np.asarray(pc.fill_null(table.column(flag), False).to_numpy(zero_copy_only=False), dtype=bool)
    stats.flagged += int(flags.sum())
    if kind.per_row:
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


class _TableWriter:
    """Writes result pieces for ``--into``; the replace of the target is ONE transaction.

    Pieces go to a staging table, committed as they come (so uncommitted rows never pile up in
    memory); at the end one short transaction drops the old table and renames the staging table
    in its place: readers see the old table or the complete new one, never a part. On failure the
    staging table is dropped and the old table is untouched.
    """

    def __init__(self, con: Any, name: str) -> None:
        *schema, table = name.split(".")
        self.con, self.started, self.unflushed = con, False, 0
        self.target, self.final = quote(name), quote(table)
        self.staging = ".".join([*(quote(p) for p in schema), quote(f"__ad_staging_{table}")])

    def write(self, table: Any) -> None:
        self.con.register("__ad_piece", table)
        try:
            if not self.started:
                self.con.execute(f"CREATE OR REPLACE TABLE {self.staging} AS SELECT * FROM __ad_piece")
                self.started = True
            else:
                self.con.execute(f"INSERT INTO {self.staging} SELECT * FROM __ad_piece")
        finally:
            self.con.unregister("__ad_piece")
        # checkpoint as we go: left to the end, DuckDB's checkpoint of every appended row takes
        # memory in proportion to the whole table (4 GB for 50M rows), not to one chunk
        self.unflushed += table.num_rows
        if self.unflushed >= CHECKPOINT_ROWS:
            self.con.execute("CHECKPOINT")
            self.unflushed = 0

    def close(self, ok: bool) -> None:
        if not self.started:
            return
        if not ok:
            self.con.execute(f"DROP TABLE IF EXISTS {self.staging}")
            return
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(f"DROP TABLE IF EXISTS {self.target}")
            self.con.execute(f"ALTER TABLE {self.staging} RENAME TO {self.final}")
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            self.con.execute(f"DROP TABLE IF EXISTS {self.staging}")
            raise
        self.con.execute("CHECKPOINT")


class _FileWriter:
    """Writes result pieces to a .parquet or .csv file next to the target, renamed into place at the end."""

    def __init__(self, path: str) -> None:
        suffix = path.lower()
        if not (suffix.endswith(".parquet") or suffix.endswith(".csv")):
            raise InputError(f"--out {path!r} must end in .parquet or .csv")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise InputError(f"--out {path!r}: folder {os.path.dirname(path) or '.'!r} does not exist")
        if os.path.isdir(path):
            raise InputError(f"--out {path!r} is a folder; give a .parquet or .csv file name")
        self.path, self.csv = path, suffix.endswith(".csv")
        self.tmp = f"{path}.tmp-{os.getpid()}"
        self.writer: Any = None

    def write(self, table: Any) -> None:
        if self.writer is None:
            if self.csv:
                import pyarrow.csv as pacsv

                opener: Any = lambda: pacsv.CSVWriter(self.tmp, table.schema)  # noqa: E731
            else:
                import pyarrow.parquet as pq

                opener = lambda: pq.ParquetWriter(self.tmp, table.schema)  # noqa: E731
            try:
                self.writer = opener()
            except PermissionError as exc:
                raise InputError(f"--out {self.path!r} cannot be written: {exc.strerror}") from None
        self.writer.write_table(table)

    def close(self, ok: bool) -> None:
        if self.writer is not None:
            self.writer.close()
        if ok and self.writer is not None:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)


def _pieces(src: Source, plan: Plan, kind: Kind) -> Iterator[tuple[Any, np.ndarray, int]]:
    """(sorted source rows, series offsets, n_series) for every engine batch, chunk by chunk."""
    sql = plan.query(src)
    chunks = plan.chunks or [((None,) * len(plan.keys), (None,) * len(plan.keys), 0, 0)]
    for lo, hi, _, _ in chunks:
        table = src.con.sql(sql, params=[*src.params, *plan.bound_params(lo, hi)]).to_arrow_table()
        offsets = _series_offsets(table, plan.keys)
        step = min(ENGINE_BATCH_SERIES, max(1, -(-plan.n_series // PROGRESS_STEPS)))
        for a in range(0, max(len(offsets) - 1, 1), step):
            b = min(a + step, len(offsets) - 1)
            lo_row, hi_row = int(offsets[a]), int(offsets[b])
            yield table.slice(lo_row, hi_row - lo_row), offsets[a : b + 1] - lo_row, b - a


def run_scan(args: argparse.Namespace, kind: Kind) -> int:
    """Scan every series of the source with ``kind`` and write/print the results."""
    params = _parameters(args, kind.parameter_names)
    kind.check(params)  # a bad parameter fails before any reading
    for option in ("db", "table", "input", "into", "out", "plot", "timestamp", "value"):
        if getattr(args, option) is not None and not getattr(args, option).strip():
            raise InputError(f"--{option} must not be empty")
    if args.into and not args.db:
        raise InputError("--into needs --db (the database to write the results table into)")
    if args.plot_top < 0:
        raise InputError(f"--plot-top must be at least 0, got {args.plot_top}")
    if args.plot and os.path.exists(args.plot) and not os.path.isdir(args.plot):
        raise InputError(f"--plot {args.plot!r} is a file, not a folder")
    writer_file = _FileWriter(args.out) if args.out else None
    src = open_source(args)
    started = time.perf_counter()
    writer_table = None
    ok = False
    try:
        if args.into and args.table and not args.input:
            # compare what the database resolves both names to: `metrics` is `main.metrics` is `demo.main.METRICS`
            if table_identity(src.con, args.into) == table_identity(src.con, args.table):
                raise InputError(
                    f"--into {args.into!r} would replace the table being scanned ({args.table!r}); choose another name"
                )
        plan = make_plan(src, args)
        if plan.null_key_rows and not args.quiet:
            print(f"{PROG}: {plan.null_key_rows} row(s) with a NULL key skipped", file=sys.stderr)
        writers: list[Any] = [w for w in (writer_file,) if w is not None]
        if args.into:
            writer_table = _TableWriter(src.con, args.into)
            writers.append(writer_table)
        stats = Stats()
        bar = _progress(plan.n_series, args.quiet)
        try:
            for part, offsets, n_series in _pieces(src, plan, kind):
                values = part.column("__ad_value").to_numpy()
                ts = part.column("__ad_ts").to_numpy()
                keys = _key_labels(part, plan.keys, offsets)
                struct = kind.detect(values, offsets, ts, args.errors, keys, params)
                result = _result_table(kind, part, offsets, struct, args.errors, plan)
                for w in writers:
                    w.write(result)
                _record(stats, kind, result, offsets, args.plot_top if args.plot else 0)
                bar.update(n_series)
        finally:
            bar.close()
        ok = True
    finally:
        for w in (writer_file, writer_table):
            if w is not None:
                w.close(ok)
        src.con.close()
    elapsed = time.perf_counter() - started
    if args.plot:
        _plot(stats, plan, kind, args.plot, args.quiet)
    if not args.quiet:
        print(_summary(stats, kind, plan, elapsed, args))
    return 0


def _key_labels(part: Any, keys: list[str], offsets: np.ndarray) -> Callable[[int], Any]:
    cols = [part.column(c) for c in keys]

    def label(i: int) -> Any:
        vals = tuple(c[int(offsets[i])].as_py() for c in cols)
        return vals[0] if len(vals) == 1 else vals

    return label


class _ProgressLines:
    """Progress where there is no terminal (logs, CI, Airflow): a stderr line at each 10% or every 30 s."""

    EVERY_SECONDS = 30.0

    def __init__(self, total: int) -> None:
        self.total, self.done, self.next_percent = max(total, 1), 0, 10
        self.started = self.last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        percent = 100 * self.done / self.total
        if percent >= self.next_percent or now - self.last >= self.EVERY_SECONDS:
            print(f"{PROG}: {self.done:,}/{self.total:,} series ({percent:.0f}%), {now - self.started:.1f} s",
                  file=sys.stderr, flush=True)
            self.next_percent, self.last = (int(percent) // 10 + 1) * 10, now

    def close(self) -> None: ...


class _NoProgress:
    def update(self, n: int) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, quiet: bool) -> Any:
    """A tqdm bar on a terminal (shown once a scan has run 2 s), else lines every 10% (none if quiet)."""
    if quiet:
        return _NoProgress()
    if not sys.stderr.isatty():
        return _ProgressLines(total)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with the duckdb extra
        return _ProgressLines(total)
    return tqdm(total=total, unit=" series", delay=2.0, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def _summary(stats: Stats, kind: Kind, plan: Plan, elapsed: float, args: argparse.Namespace) -> str:
    rate = stats.series / elapsed if elapsed > 0 else float("inf")
    what = {"entire": "anomalies", "last": "anomalous last points", "change_points": "change points"}[
        kind.name
    ]
    lines = [
        f"scanned {stats.series:,} series ({stats.points:,} points) in {elapsed:.1f} s ({rate:,.0f} series/s): "
        f"{stats.flagged:,} {what} in {stats.series_flagged:,} series"
    ]
    if stats.invalid:
        lines.append(f"{stats.invalid:,} series could not be scanned, e.g. {stats.first_error}")
    if args.into:
        lines.append(f"results: table {args.into} in {args.db}")
    if args.out:
        lines.append(f"results: {args.out}")
    return "\n".join(lines)


def _plot(stats: Stats, plan: Plan, kind: Kind, folder: str, quiet: bool) -> list[str]:
    """One PNG per most-anomalous series (``plot.plot_series``); returns the paths."""
    try:
        from .plot import plot_series
    except ImportError:  # pragma: no cover - plot.py ships with the package
        print(f"{PROG}: --plot needs ad_pipeline.plot; skipped", file=sys.stderr)
        return []
    paths = []
    for rank, (score, _, t) in enumerate(sorted(stats.top, key=lambda x: (-x[0], x[1])), start=1):
        key = ", ".join(str(t.column(c)[0].as_py()) for c in plan.keys)
        panel: dict[str, Any] = {
            "title": f"{key}: {int(score)} flagged",
            "value": _floats(t.column(plan.value)),
            "timestamp": _timestamps(t.column(plan.ts)),
        }
        for name in ("expected_value", "lower_boundary", "upper_boundary"):
            if name in t.column_names:
                panel[name] = _floats(t.column(name))
        for name in ("is_anomaly", "is_positive_anomaly", "is_negative_anomaly", "is_change_point"):
            if name in t.column_names:
                panel[name] = _bools(t.column(name))
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:80]
        path = os.path.join(folder, f"{rank:02d}_{safe}.png")
        plot_series([panel], path)
        paths.append(path)
    if not quiet:
        print(f"plots: {len(paths)} PNG(s) in {folder}", file=sys.stderr)
    return paths


def _floats(col: Any) -> np.ndarray:
    import pyarrow as pa

    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _bools(col: Any) -> np.ndarray:
    import pyarrow.compute as pc

    return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)


def _timestamps(col: Any) -> np.ndarray | None:
    import pyarrow as pa

    try:
        return np.asarray(col.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


# --------------------------------------------------------------------------- demo


def make_demo_table(con: Any, n_series: int = 300, n_points: int = 1000, seed: int = 0) -> int:
    """Create ``metrics(key, ts, value)`` (hourly, daily + weekly seasonality, noise) with injected anomalies.

    The injected points are listed in ``metrics_injected(key, ts, kind)``. Returns the number of
    injected anomalies.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> make_demo_table(con, n_series=3, n_points=200) > 0
    True
    >>> con.execute("SELECT count(*) FROM metrics").fetchall()[0]
    (600,)
    >>> con.close()
    """
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    level = rng.uniform(20, 200, n_series)[:, None]
    daily = (
        rng.uniform(0.1, 0.4, n_series)[:, None]
        * level
        * np.sin(2 * np.pi * (t + rng.integers(0, 24, (n_series, 1))) / 24)
    )
    weekly = rng.uniform(0.0, 0.1, n_series)[:, None] * level * np.sin(2 * np.pi * t / 168)
    trend = rng.normal(0, 0.02, n_series)[:, None] * level * t / n_points
    noise_sd = rng.uniform(0.01, 0.04, n_series)[:, None] * level
    values = level + daily + weekly + trend + noise_sd * rng.normal(size=(n_series, n_points))
    # about 3 anomalies per series, away from the first two days: spikes up and dips down
    n_anom = 3
    where = np.sort(rng.choice(np.arange(48, n_points), size=(n_series, n_anom), replace=True), axis=1)
    sign = rng.choice([-1.0, 1.0], size=(n_series, n_anom))
    size = (
        rng.uniform(8, 15, size=(n_series, n_anom)) * noise_sd
        + rng.uniform(0.3, 0.6, (n_series, n_anom)) * level * 0.3
    )
    rows = np.repeat(np.arange(n_series), n_anom)
    values[rows, where.ravel()] += (sign * size).ravel()
    keys = np.array([f"series_{i:04d}" for i in range(n_series)], dtype=object)
    start = np.datetime64("2024-01-01T00:00", "us")
    ts = start + t.astype("timedelta64[h]").astype("timedelta64[us]")
    table = pa.table({"key": np.repeat(keys, n_points), "ts": np.tile(ts, n_series), "value": values.ravel()})
    injected = pa.table({
        "key": keys[rows], "ts": ts[where.ravel()], "kind": np.where(sign.ravel() > 0, "spike", "dip"),
    })  # fmt: skip
    for name, tbl in (("metrics", table), ("metrics_injected", injected)):
        con.register("__ad_demo", tbl)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT DISTINCT * FROM __ad_demo ORDER BY ALL"
                        if name == "metrics_injected" else f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM __ad_demo")  # fmt: skip
        finally:
            con.unregister("__ad_demo")
    return int(con.execute("SELECT count(*) FROM metrics_injected").fetchall()[0][0])


def _add_demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", default=DEMO_DB, help=f"demo database file (default: {DEMO_DB}, created or replaced)"
    )
    p.add_argument("--series", type=int, default=300, help="number of series (default 300)")
    p.add_argument("--points", type=int, default=1000, help="hourly points per series (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", help="write PNGs of the most anomalous series to this folder", metavar="DIR")
    p.add_argument(
        "--plot-top", type=int, default=6, help="how many series --plot draws (default 6)", metavar="N"
    )
    p.add_argument(
        "--sensitivity",
        type=float,
        default=DEMO_SENSITIVITY,
        help=f"0-100 (default {DEMO_SENSITIVITY:g} here: the demo's noise is clean; scan uses the engine's 99)",
    )


def run_demo(args: argparse.Namespace) -> int:
    """Build the demo warehouse, scan it into ``metrics_anomalies`` and compare with what was injected."""
    import duckdb

    if args.series < 1 or args.points < 48:
        raise InputError(f"--series must be >= 1 and --points >= 48, got {args.series} and {args.points}")
    con = duckdb.connect(args.db)
    try:
        injected = make_demo_table(con, args.series, args.points, args.seed)
    finally:
        con.close()
    if not args.quiet:
        print(f"demo warehouse {args.db}: table metrics, {args.series:,} hourly series x {args.points:,} points, "
              f"{injected:,} injected anomalies (table metrics_injected)")  # fmt: skip
    scan_argv = (
        ["scan", "--db", args.db, "--table", "metrics", "--key", "key", "--timestamp", "ts", "--value", "value",
         "--into", "metrics_anomalies"]
        + (["--plot", args.plot, "--plot-top", str(args.plot_top)] if args.plot else [])
        + (["--sensitivity", str(args.sensitivity)] if args.sensitivity is not None else [])
        + (["--quiet"] if args.quiet else [])
    )  # fmt: skip
    code = run_scan(build_parser(scan_argv).parse_args(scan_argv), ENTIRE)
    if code or args.quiet:
        return code
    con = duckdb.connect(args.db, read_only=True)
    try:
        found, flagged = con.execute(
            "SELECT count(*) FILTER (WHERE a.is_anomaly), (SELECT count(*) FROM metrics_anomalies WHERE is_anomaly) "
            "FROM metrics_injected i JOIN metrics_anomalies a USING (key, ts)"
        ).fetchall()[0]
    finally:
        con.close()
    print(
        f"found {found:,} of {injected:,} injected anomalies ({found / max(injected, 1):.1%}) "
        f"at sensitivity {args.sensitivity:g}; {flagged - found:,} other points flagged"
    )
    db = shlex.quote(args.db)
    print(
        f"scan again: {_self_command()} scan --db {db} --table metrics --key key --timestamp ts --value value "
        f"--into metrics_anomalies --sensitivity {args.sensitivity:g}"
    )
    explore = (
        f"import duckdb; duckdb.connect({json.dumps(args.db)}, read_only=True).sql(\"SELECT key, ts, value, "
        "expected_value, severity FROM metrics_anomalies WHERE is_anomaly ORDER BY severity DESC LIMIT 10\").show()"
    )
    print(f"explore:    {shlex.quote(sys.executable)} -c {shlex.quote(explore)}")
    return 0


def _self_command() -> str:
    """How to run this command again, as typed in a shell: the console script that runs, or the module."""
    if os.path.basename(sys.argv[0]) == PROG:
        return shlex.quote(sys.argv[0])
    return f"{shlex.quote(sys.executable)} -m ad_pipeline.cli"


# --------------------------------------------------------------------------- command table and main


def _scan_command(kind: Kind, help: str) -> Command:
    def add(p: argparse.ArgumentParser) -> None:
        _add_source_arguments(p)
        (_add_change_point_parameters if kind is CHANGE_POINTS else _add_detect_parameters)(p)

    return Command(help, add, lambda args: run_scan(args, kind))


def _serve_add(p: argparse.ArgumentParser) -> None:
    from .rest.server import build_parser as serve_parser

    serve_parser(p)


def _serve_run(args: argparse.Namespace) -> int:
    from .rest.server import serve

    return serve(args)


#: subcommand -> (help, add_arguments, run). Options are only built for the subcommand being run,
#: so a heavy one (serve imports FastAPI) costs nothing to the others.
COMMANDS: dict[str, Command] = {
    "scan": _scan_command(ENTIRE, "detect anomalies in every series (one result row per input row)"),
    "last": _scan_command(LAST, "is the newest point of every series anomalous (one row per series)"),
    "change-points": _scan_command(CHANGE_POINTS, "find change points in every series"),
    "demo": Command("create a demo warehouse, scan it and summarise", _add_demo_arguments, run_demo),
    "serve": Command("serve the Azure Anomaly Detector compatible REST API", _serve_add, _serve_run),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; only the subcommand named in ``argv`` gets its options built."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Time-series anomaly detection over DuckDB tables and CSV/Parquet files.",
        epilog=f"example: {PROG} demo   |   {PROG} scan --db warehouse.duckdb --table metrics --into metrics_anomalies",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in (argv or []) if a in COMMANDS), None)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        if name == chosen:  # `ad-pipeline --help` imports no command's dependencies
            cmd.add_arguments(p)
            _add_common(p)
    return parser


#: how DuckDB wraps an exception raised inside one of our UDFs (the text timestamp reader)
_UDF_WRAPPER = "Python exception occurred while executing the UDF: "


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: the extra that brings each optional package a command imports
_EXTRA_OF = {"duckdb": "duckdb", "pyarrow": "duckdb", "tqdm": "duckdb", "fastapi": "server", "uvicorn": "server",
             "starlette": "server", "pydantic": "server", "matplotlib": "plot"}  # fmt: skip


def _missing_extra(exc: ImportError) -> MissingDependency | None:
    """The MissingDependency naming the extra to install, for an optional package that is absent."""
    if isinstance(exc, MissingDependency):
        return exc
    root = (exc.name or "").split(".")[0]
    return MissingDependency.for_extra(root, _EXTRA_OF[root]) if root in _EXTRA_OF else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ad-pipeline``; returns the exit status (0 done, 2 bad input, 1 other failure)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except ImportError as exc:  # the options of `serve` come from the server module
        missing = _missing_extra(exc)
        if missing is None:
            raise
        print(f"{PROG}: error: {missing.code}: {missing.message}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command].run(args)
    except ImportError as exc:
        missing = _missing_extra(exc)
        if missing is None or getattr(args, "traceback", False):
            raise
        print(f"{PROG}: error: {missing.code}: {missing.message}", file=sys.stderr)
        return 2
    except (InputError, AnomalyDetectorError) as exc:
        msg = f"{exc.code}: {exc.message}" if isinstance(exc, AnomalyDetectorError) else str(exc)
        print(f"{PROG}: error: {msg.splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command line reports, it does not crash
        if getattr(args, "traceback", False):
            raise
        status = 2 if _is_input_error(exc) else 1
        line = _first_line(exc)
        if _UDF_WRAPPER in line:  # our own error raised inside a UDF: say it as ours
            print(f"{PROG}: error: {line.split(_UDF_WRAPPER, 1)[1]}", file=sys.stderr)
        else:
            print(f"{PROG}: error: {type(exc).__name__}: {line}", file=sys.stderr)
        return status


def _is_input_error(exc: BaseException) -> bool:
    """DuckDB errors caused by the input (unknown table, unreadable file, bad cast) exit with status 2."""
    try:
        import duckdb
    except ImportError:  # pragma: no cover
        return False
    return isinstance(
        exc,
        (duckdb.CatalogException, duckdb.BinderException, duckdb.ConversionException, duckdb.IOException,
         duckdb.ParserException, duckdb.InvalidInputException, duckdb.InvalidTypeException,
         duckdb.TypeMismatchException, BadArgument),
    )  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
