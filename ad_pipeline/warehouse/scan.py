"""One scan of a warehouse table: list the keys, read chunks of whole series, detect, write.

Nothing here imports Airflow: the operators in :mod:`ad_pipeline.airflow.operators` resolve the
hook, the window and the run id, then hand a :class:`~.spec.ScanSpec` and a backend
(:mod:`.backends`) to :func:`run_scan`.

The flow, for the keys of one hash partition:

1. probe the source's schema (``WHERE 1 = 0``): wrong names fail here, before anything is written;
   so do result columns of another type in an existing output;
2. list the keys with rows in the window (``GROUP BY key``: one row per series);
3. ``with backend.transaction():`` -- BEGIN; create the results table if missing (or add the result
   columns to the source table); for each chunk of whole series (at most ``chunk_rows`` rows):
   read it as Arrow, make ONE engine batch call (:mod:`.detect`), replace the old results (``DELETE``
   + bulk insert, or ``UPDATE ... FROM`` the bulk-loaded rows); the backend's deferred write;
   COMMIT. Any exception rolls everything back: the output is exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from ..errors import BadArgument
from .backends import Backend
from .detect import detect_chunk
from .spec import MAX_PARAMS, META_COLUMNS, Bounds, ScanSpec, ScanSummary, key_hash, plan_chunks, result_names
from .sql import (
    Params,
    ScanSql,
    TwinDDL,
    is_bad_request,
    output_ddl,
    refusing,
    run_ddl,
    source_error,
    sql_type,
)


def run_scan(spec: ScanSpec, backend: Backend) -> dict[str, Any]:
    """Run the scan described by ``spec`` through ``backend``; returns the XCom summary."""
    bounds = open_scan(spec, backend)
    what = "results table" if spec.target_table else "source table (write_back)"
    with refusing(f"Preparing the {what} failed"):
        _prepare_output(spec, backend)  # column types checked before anything is read or written
    chunks = list_chunks(spec, backend, bounds)
    summary, detected_at = ScanSummary(), dt.datetime.now(dt.UTC)
    for attempt in (0, 1):  # a twin task creating the same output at the same moment: prepare again, once
        with refusing(f"Preparing the {what} failed"):
            ddl = _prepare_output(spec, backend)
        try:
            # ---- the write transaction: BEGIN ... COMMIT; any exception rolls all of it back ----
            with refusing("The database refused the scan"), backend.transaction():
                run_ddl(backend, ddl, what, twin_retry=attempt == 0)  # DDL first: a failure leaves none behind
                if ddl and spec.write_back:
                    backend.read_on_writer()  # the source is locked by its ALTER TABLE until the commit
                _scan_chunks(spec, backend, bounds, chunks, detected_at, summary)
            # ---- committed, after the backend's deferred write (Backend.transaction) ----
            return summary.to_dict(spec)
        except TwinDDL:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _scan_chunks(spec: ScanSpec, backend: Backend, bounds: Bounds, chunks: list[list[tuple[Any, ...]]],
                 detected_at: dt.datetime, summary: ScanSummary) -> None:
    """Read, detect and write every chunk, inside the open transaction.

    A backend whose reads use their own connection (PostgreSQL: ADBC) writes chunk i on a worker
    thread while chunk i+1 is read and detected: the server works while the engine computes. At
    most one write is pending, so memory stays at about two chunks; leaving this function (normally
    or by an exception) waits for it, so the transaction never ends under a running write.
    """

    def write(chunk_keys: list[tuple[Any, ...]], out: pa.Table) -> float:
        t = time.perf_counter()
        _write_chunk(spec, backend, bounds, chunk_keys, out)
        return time.perf_counter() - t

    started, every = time.perf_counter(), max(1, len(chunks) // 20)  # progress in ~5% steps
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[float] | None = None
        try:
            for chunk_keys in chunks:
                t0 = time.perf_counter()
                tbl = read_chunk(spec, backend, bounds, chunk_keys)
                t1 = time.perf_counter()
                out = detect_chunk(spec, tbl, bounds, detected_at, summary)
                del tbl
                summary.seconds["read"] += t1 - t0
                summary.seconds["detect"] += time.perf_counter() - t1
                if pending is not None:
                    summary.seconds["write"] += pending.result()
                    pending = None
                if backend.separate_reader:
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
        finally:
            if pending is not None:
                pending.cancel()  # a write not started is not started; a running one is waited for


# --------------------------------------------------------------------------- the read side (also the CLI's)


def open_scan(spec: ScanSpec, backend: Backend) -> Bounds:
    """Probe the source (names and types checked before anything is read) and bind the window."""
    schema = _probe(spec, backend)
    return Bounds(spec, schema.field(len(spec.keys)).type)


def list_chunks(spec: ScanSpec, backend: Backend, bounds: Bounds) -> list[list[tuple[Any, ...]]]:
    """The keys with rows in the window (of this hash partition), as chunks of whole series."""
    keys, counts = _list_keys(spec, backend, bounds)
    if spec.partitions > 1:
        mine = [i for i, k in enumerate(keys) if key_hash(k) % spec.partitions == spec.partition]
        keys, counts = [keys[i] for i in mine], [counts[i] for i in mine]
    max_keys = max(1, MAX_PARAMS // (len(spec.keys) + 1) - 4)
    chunks = [[keys[i] for i in idx] for idx in plan_chunks(keys, counts, spec.chunk_rows, max_keys)]
    spec.log(f"{len(keys)} series ({sum(counts)} rows) in partition {spec.partition}/{spec.partitions}, "
             f"{len(chunks)} chunk(s)")
    return chunks


def read_chunk(spec: ScanSpec, backend: Backend, bounds: Bounds, keys: Sequence[tuple[Any, ...]]) -> pa.Table:
    """The rows of ``keys`` in the window, sorted by key and timestamp: the key columns, the timestamp,
    one float column per value column (``ad_value_<i>``), then the ``carry`` columns. No keys: no rows."""
    s = ScanSql(spec, backend, read=True)
    p = Params(backend.read_style)
    sel = [s.q(k) for k in spec.keys] + [s.q(spec.timestamp)]
    sel += [f"CAST({s.q(v)} AS {backend.double_type}) AS {s.q(f'ad_value_{i}')}" for i, v in enumerate(spec.values)]
    sel += [s.q(c) for c in spec.carry]
    order = ", ".join(s.q(c) for c in [*spec.keys, spec.timestamp])
    if not keys:
        where = "1 = 0"
    elif spec.partitions == 1:  # the chunk is a run of the listed keys in the database's order: read it as a range
        where = f"{s.window(p, bounds.scan_start, bounds.end)} AND {s.key_range(p, keys[0], keys[-1])}"
    else:  # a hash partition's keys are scattered over the key order
        where = f"{s.window(p, bounds.scan_start, bounds.end)} AND {s.key_in(p, keys)}"
    return backend.query_arrow(f"SELECT {', '.join(sel)} FROM {s.source()} WHERE {where} ORDER BY {order}", p.values)


# --------------------------------------------------------------------------- source and output


def _probe(spec: ScanSpec, backend: Backend) -> pa.Schema:
    s = ScanSql(spec, backend, read=True)
    cols = ", ".join(s.q(c) for c in [*spec.keys, spec.timestamp, *spec.values])
    try:
        schema = backend.query_arrow(f"SELECT {cols} FROM {s.source()} WHERE 1 = 0").schema
    except Exception as exc:
        if is_bad_request(exc):
            raise source_error(spec, exc) from exc
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


def _prepare_output(spec: ScanSpec, backend: Backend) -> list[str]:
    """The DDL of the results table (created when missing) or of the source's result columns."""
    q = backend.quote
    s = ScanSql(spec, backend, read=False)
    results = [*result_names(spec), *META_COLUMNS]
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
        sel.append(f"CAST(NULL AS {sql_type(backend, typ)}) AS {q(name)}")
    create = f"CREATE TABLE IF NOT EXISTS {target} AS SELECT {', '.join(sel)} FROM {s.source()} WHERE 1 = 0"
    ddl = output_ddl(backend, target, "results table", [*values, *results], create)
    if backend.dialect == "postgres" and ddl and ddl[0] == create:  # the index comes with the table it creates
        digest = hashlib.blake2b(".".join(spec.target_table).encode(), digest_size=6).hexdigest()
        idx_cols = ", ".join(q(c) for c in [*spec.keys, spec.timestamp])
        ddl.append(f"CREATE INDEX IF NOT EXISTS {q('ad_pipeline_idx_' + digest)} ON {target} ({idx_cols})")
    return ddl


def _list_keys(spec: ScanSpec, backend: Backend, bounds: Bounds) -> tuple[list[tuple[Any, ...]], list[int]]:
    s = ScanSql(spec, backend, read=True)
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
        if is_bad_request(exc):
            raise source_error(spec, exc) from exc
        raise
    cols = [tbl.column(i).to_pylist() for i in range(len(spec.keys))]
    key_tuples = list(zip(*cols, strict=True)) if cols and tbl.num_rows else []
    counts = [int(n) for n in tbl.column(len(spec.keys)).to_pylist()]
    return key_tuples, counts


def _write_chunk(spec: ScanSpec, backend: Backend, bounds: Bounds, keys: Sequence[tuple[Any, ...]], out: pa.Table) -> None:
    """Replace the chunk's old results (inside the open transaction)."""
    s = ScanSql(spec, backend, read=False)
    if spec.write_back:
        backend.update_from_arrow(backend.qualified(spec.table or ()), [*spec.keys, spec.timestamp], out)
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


__all__ = ["run_scan", "open_scan", "list_chunks", "read_chunk"]
