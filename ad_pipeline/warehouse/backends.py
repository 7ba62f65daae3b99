"""Bulk reads and writes through a DB-API connection (a ``common.sql`` hook's), one class per dialect.

Values always travel as bound parameters or bulk data (Arrow / COPY); identifiers are quoted
through the dialect. Nothing here imports Airflow: a backend wraps the hook's DB-API connection.
Every write runs inside :meth:`Backend.transaction` (BEGIN ... the deferred write ... COMMIT,
ROLLBACK on any exception).

* DuckDB: reads with ``to_arrow_table()``; writes by registering an Arrow table and running
  ``INSERT ... SELECT`` / ``UPDATE ... FROM`` on it.
* PostgreSQL: reads through ADBC (``adbc_driver_postgresql``, Arrow straight from the server's
  binary COPY); writes on the hook's psycopg 3 connection: binary ``COPY ... FROM STDIN``
  (:mod:`.pgcopy`) into a temporary table, then ``INSERT ... SELECT`` or ``UPDATE ... FROM``.
* Any other DB-API connection: ``fetchall`` and ``executemany`` (correct, not fast).
"""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import BadArgument, MissingDependency, pip_install
from .sql import Params, ansi_quote


class Backend:
    """Generic DB-API backend (``paramstyle`` from the hook); subclasses override the bulk paths."""

    dialect = "generic"
    max_identifier_bytes: int | None = None  # None: no limit known
    separate_reader = False  # True when reads use their own connection (writes may run meanwhile)
    double_type = "DOUBLE PRECISION"
    text_type = "VARCHAR(1000)"
    tstz_type = "TIMESTAMP WITH TIME ZONE"

    def __init__(self, hook: Any, *, conn: Any = None) -> None:
        """A backend on ``hook``'s connection (or on ``conn``, a DB-API connection opened elsewhere)."""
        self.hook = hook
        self.conn = hook.get_conn() if conn is None else conn
        placeholder = getattr(hook, "placeholder", "%s") or "%s"
        self.write_style = "qmark" if placeholder == "?" else "format"
        self.read_style = self.write_style

    # ---------------------------------------------------------------- identifiers
    def quote(self, name: str) -> str:
        q = ansi_quote(name)
        return q.replace("%", "%%") if self.write_style == "format" else q

    def quote_read(self, name: str) -> str:
        q = ansi_quote(name)
        return q.replace("%", "%%") if self.read_style == "format" else q

    def qualified(self, parts: Sequence[str], *, read: bool = False) -> str:
        quote = self.quote_read if read else self.quote
        return ".".join(quote(p) for p in parts)

    # ---------------------------------------------------------------- the write transaction
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The write transaction: BEGIN; the body's statements; the deferred write; COMMIT.

        Any exception (in the body, the deferred write or the commit) rolls everything back, so the
        output is exactly as it was, and is raised as it came.
        """
        self.begin()
        try:
            yield
            self.write_deferred()
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def begin(self) -> None:
        """BEGIN (a DB-API driver opens the transaction with the first statement: nothing to send)."""

    def write_deferred(self) -> None:
        """Run the writes a backend put off until the whole transaction was staged (none here)."""

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # noqa: BLE001 - the connection may already be gone; the server rolls back
            pass

    def read_on_writer(self) -> None:
        """Read on the writing connection from now on (only a backend with a separate reader cares)."""

    # ---------------------------------------------------------------- statements

    def column_types(self, table_sql: str) -> dict[str, str] | None:
        """Column -> the database's type name of an existing table (``""`` when the driver does not
        say); None when there is no such table. Runs outside the write transaction."""
        cur = self.conn.cursor()
        try:
            cur.execute(f"SELECT * FROM {table_sql} WHERE 1 = 0", [])
            return {d[0]: "" for d in cur.description}
        except Exception:  # noqa: BLE001 - a generic driver tells no "missing table" apart
            self.rollback()
            return None
        finally:
            cur.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        cur = self.conn.cursor()
        try:
            cur.execute(sql, list(params))
        finally:
            cur.close()

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass

    # ---------------------------------------------------------------- reads
    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        cur = self.conn.cursor()
        try:
            cur.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        finally:
            cur.close()
        cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
        return pa.table({n: pa.array(list(c)) for n, c in zip(names, cols, strict=True)})

    # ---------------------------------------------------------------- writes (inside the open transaction)
    def insert_arrow(self, table_sql: str, data: pa.Table) -> None:
        cols = ", ".join(self.quote(c) for c in data.column_names)
        ph = Params(self.write_style)
        marks = ", ".join(ph.add(None) for _ in data.column_names)
        cur = self.conn.cursor()
        try:
            rows = list(zip(*(c.to_pylist() for c in data.columns), strict=True))
            if rows:
                cur.executemany(f"INSERT INTO {table_sql} ({cols}) VALUES ({marks})", rows)
        finally:
            cur.close()

    def update_from_arrow(self, table_sql: str, match: Sequence[str], data: pa.Table) -> None:
        sets = [c for c in data.column_names if c not in match]
        ph = Params(self.write_style)
        set_sql = ", ".join(f"{self.quote(c)} = {ph.add(None)}" for c in sets)
        where = " AND ".join(f"{self.quote(c)} = {ph.add(None)}" for c in match)
        cols = [data.column(c).to_pylist() for c in [*sets, *match]]
        cur = self.conn.cursor()
        try:
            rows = list(zip(*cols, strict=True))
            if rows:
                cur.executemany(f"UPDATE {table_sql} SET {set_sql} WHERE {where}", rows)
        finally:
            cur.close()


class DuckDBBackend(Backend):
    """DuckDB: Arrow out of the result, Arrow in through a registered view."""

    dialect = "duckdb"
    double_type = "DOUBLE"
    text_type = "VARCHAR"
    tstz_type = "TIMESTAMPTZ"

    def __init__(self, hook: Any = None, *, conn: Any = None) -> None:
        super().__init__(hook, conn=conn)
        self.write_style = self.read_style = "qmark"

    def begin(self) -> None:
        self.conn.begin()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, list(params))

    def column_types(self, table_sql: str) -> dict[str, str] | None:
        import duckdb

        try:
            desc = self.conn.execute(f"SELECT * FROM {table_sql} WHERE 1 = 0").description
        except duckdb.CatalogException:
            return None
        return {d[0]: str(d[1]) for d in desc}

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        rel = self.conn.sql(sql, params=list(params) or None)
        fetch = getattr(rel, "to_arrow_table", None) or rel.arrow  # duckdb >= 1.4 / older
        return fetch()

    def _on_registered(self, data: pa.Table, statement: Callable[[str], str]) -> None:
        """Run ``statement(view)`` with ``data`` registered as the (quoted) view ``view``.

        When the statement fails, the transaction is aborted and unregistering would fail too
        ("Current transaction is aborted"): the statement's own error is the one raised.
        """
        name = f"ad_pipeline_{uuid.uuid4().hex}"
        self.conn.register(name, data)
        try:
            self.conn.execute(statement(self.quote(name)))
        except BaseException:
            with contextlib.suppress(Exception):
                self.conn.unregister(name)
            raise
        self.conn.unregister(name)

    def insert_arrow(self, table_sql: str, data: pa.Table) -> None:
        cols = ", ".join(self.quote(c) for c in data.column_names)
        self._on_registered(data, lambda view: f"INSERT INTO {table_sql} ({cols}) SELECT {cols} FROM {view}")

    def update_from_arrow(self, table_sql: str, match: Sequence[str], data: pa.Table) -> None:
        q = self.quote
        sets = ", ".join(f"{q(c)} = s.{q(c)}" for c in data.column_names if c not in match)
        where = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in match)
        self._on_registered(data, lambda view: f"UPDATE {table_sql} AS t SET {sets} FROM {view} AS s WHERE {where}")


def _is_text(typ: pa.DataType) -> bool:
    return bool(pa.types.is_string(typ) or pa.types.is_large_string(typ))


@dataclass
class _Staged:
    """Rows loaded into temporary tables by :meth:`PostgresBackend._stage` (appendable)."""

    source: dict[str, str]  # column -> SQL expression of its value (``s."c"`` or ``d3.value``)
    from_sql: str  # the bulk table ``s`` left-joined to each text column's dictionary ``d<i>``
    dictionaries: dict[str, str]  # text column -> its dictionary table (``id``, ``value``)
    tables: list[str]  # every temporary table, to drop afterwards
    sizes: dict[str, int]  # text column -> ids given so far (more chunks may be appended)


@dataclass
class _PendingUpdate:
    """An ``UPDATE ... FROM`` whose rows are being staged, run at commit."""

    table_sql: str
    match: list[str]
    names: list[str]
    staged: _Staged


class PostgresBackend(Backend):
    """PostgreSQL: ADBC reads (Arrow), psycopg 3 ``COPY FROM STDIN`` writes in the hook's transaction."""

    dialect = "postgres"
    separate_reader = True
    text_type = "TEXT"

    def __init__(self, hook: Any) -> None:
        super().__init__(hook)
        if not hasattr(self.conn, "pgconn"):
            raise MissingDependency(
                "The PostgreSQL backend needs psycopg 3 (the postgres hook fell back to psycopg2); "
                f"install it with: {pip_install('postgres')}"
            )
        self.write_style = "format"
        self.read_style = "numeric_dollar"
        self._adbc: Any = None
        self._key_indexed: dict[tuple[str, str], bool] = {}
        self._pending: _PendingUpdate | None = None
        self._read_on_writer = False
        cur = self.conn.cursor()
        try:  # NAMEDATALEN - 1 (63 unless the server was built otherwise)
            cur.execute("SHOW max_identifier_length")
            self.max_identifier_bytes = int(cur.fetchone()[0])
        finally:
            cur.close()
            self.conn.rollback()

    def _identifier(self, name: str) -> str:
        """The quoted identifier; a name longer than the server keeps is refused (it would be truncated,
        so two long names sharing their first bytes would name one table or column)."""
        from psycopg import sql

        ansi_quote(name)  # same refusal of empty names as elsewhere
        size = len(name.encode("utf-8", "surrogatepass"))
        if self.max_identifier_bytes is not None and size > self.max_identifier_bytes:
            raise BadArgument(
                f"The identifier {name!r} is {size} bytes long; PostgreSQL keeps at most "
                f"{self.max_identifier_bytes} bytes of a name (and silently truncates longer ones): "
                "choose a shorter name."
            )
        return sql.Identifier(name).as_string(self.conn)

    def quote(self, name: str) -> str:
        return self._identifier(name).replace("%", "%%")

    def quote_read(self, name: str) -> str:
        return self.quote(name) if self._read_on_writer else self._identifier(name)

    def column_types(self, table_sql: str) -> dict[str, str] | None:
        cur = self.conn.cursor()
        try:
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table_sql.replace("%%", "%")])
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                        [table_sql.replace("%%", "%")])
            return {name: typ for name, typ in cur.fetchall()}
        finally:
            cur.close()
            self.conn.rollback()

    def _query_arrow_on_writer(self, sql: str, params: Sequence[Any]) -> pa.Table:
        """A query's rows as Arrow, on the writing connection: ``COPY (query) TO STDOUT`` as CSV, parsed
        by Arrow with the types the server describes (bound values are inlined by psycopg's client-side
        binding, since ``COPY`` takes no parameters)."""
        import pyarrow.csv as pacsv
        from psycopg import ClientCursor

        cur = ClientCursor(self.conn)
        try:
            query = cur.mogrify(sql, list(params))
            cur.execute(f"SELECT * FROM ({query}) AS ad_query LIMIT 0")
            fields = [(d.name, _ARROW_OF_OID.get(d.type_code, pa.string())) for d in cur.description or ()]
            cur.execute("SELECT set_config('DateStyle', 'ISO, YMD', true)")
            buf = io.BytesIO()
            with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as cp:
                for block in cp:
                    buf.write(block)
        finally:
            cur.close()
        names = [n for n, _ in fields]
        if not buf.tell():
            return pa.table({n: pa.array([], type=t) for n, t in fields})
        buf.seek(0)
        return pacsv.read_csv(
            buf,
            read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(len(names))]),
            convert_options=pacsv.ConvertOptions(
                column_types={f"c{i}": t for i, (_, t) in enumerate(fields)},
                strings_can_be_null=True, quoted_strings_can_be_null=False,  # NULL is unquoted, '' quoted
            ),
        ).rename_columns(names)

    def read_on_writer(self) -> None:
        """Read on the writing connection from now on: its transaction altered the table being read,
        and a read on the ADBC connection would wait for that lock until the commit (a deadlock)."""
        self._read_on_writer = True
        self.separate_reader = False
        self.read_style = self.write_style

    def _reader(self) -> Any:
        if self._adbc is None:
            try:
                import adbc_driver_postgresql.dbapi as adbc
            except ImportError:  # pragma: no cover - part of the [postgres] extra
                raise MissingDependency.for_extra("adbc-driver-postgresql", "postgres") from None
            from psycopg.conninfo import make_conninfo

            info = self.conn.info
            kwargs = {k: v for k, v in info.get_parameters().items()}
            if info.password:
                kwargs["password"] = info.password
            self._adbc = adbc.connect(make_conninfo("", **kwargs), autocommit=True)
        return self._adbc

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        if self._read_on_writer:
            return self._query_arrow_on_writer(sql, params)
        cur = self._reader().cursor()
        try:
            cur.execute(sql, parameters=list(params) if params else None)
            return cur.fetch_arrow_table()
        finally:
            cur.close()

    def close(self) -> None:
        if self._adbc is not None:
            try:
                self._adbc.close()
            except Exception:  # noqa: BLE001
                pass
        super().close()

    def _copy(self, table_sql: str, columns: str, options: str, payload: bytes | memoryview) -> None:
        cur = self.conn.cursor()
        try:
            with cur.copy(f"COPY {table_sql.replace('%%', '%')} ({columns}) FROM STDIN {options}") as cp:
                view = memoryview(payload)
                step = 1 << 20
                for i in range(0, len(view), step):
                    cp.write(view[i : i + step])
        finally:
            cur.close()

    def _copy_in(self, table_sql: str, data: pa.Table) -> None:
        """``COPY`` ``data`` into ``table_sql`` as CSV written by Arrow (any column types)."""
        import pyarrow.csv as pacsv

        buf = io.BytesIO()
        pacsv.write_csv(data, buf, pacsv.WriteOptions(include_header=False, batch_size=65536))
        cols = ", ".join(self.quote(c) for c in data.column_names).replace("%%", "%")
        self._copy(table_sql, cols, "(FORMAT csv)", buf.getbuffer())

    def _copy_in_binary(self, table_sql: str, data: pa.Table) -> None:
        """``COPY`` ``data`` into ``table_sql``: binary for rows of fixed-width types without nulls
        (no text parsing on the server), CSV for the rest or when a type has no binary form."""
        from . import pgcopy

        cols = ", ".join(self.quote(c) for c in data.column_names)
        cur = self.conn.cursor()
        try:
            cur.execute(f"SELECT {cols} FROM {table_sql} WHERE false", [])
            oids = [d.type_code for d in cur.description]
        finally:
            cur.close()
        encoded = pgcopy.encode([data.column(i).combine_chunks() for i in range(data.num_columns)], oids)
        if encoded is None:
            self._copy_in(table_sql, data)
            return
        payload, left_out = encoded
        if len(left_out) > left_out.sum():
            self._copy(table_sql, cols.replace("%%", "%"), "(FORMAT binary)", payload)
        if left_out.any():
            self._copy_in(table_sql, data.filter(pa.array(left_out)))

    def _stage(self, table_sql: str, data: pa.Table, into: _Staged | None = None) -> _Staged:
        """Load ``data`` into temporary tables for a statement on ``table_sql`` to read.

        The rows go by binary ``COPY`` into one temporary table whose columns take their types
        from ``table_sql`` (so values compare and assign as the table's own). Text columns
        (keys, ``run_id``) travel as integer ids into one small dictionary table each, so every
        bulk row has a fixed width. With ``into``, the rows are appended to an earlier staging
        of the same columns (ids continue where they stopped).
        """
        import pyarrow.compute as pc

        q = self.quote
        text = {c for c in data.column_names if _is_text(data.schema.field(c).type)}
        if into is None:
            tmp = q(f"ad_pipeline_{uuid.uuid4().hex}")
            select = ", ".join(f"NULL::integer AS {q(c)}" if c in text else f"t.{q(c)}" for c in data.column_names)
            self.execute(f"CREATE TEMPORARY TABLE {tmp} ON COMMIT DROP AS "
                         f"SELECT {select} FROM {table_sql} AS t WHERE false")
            into = _Staged({}, f"{tmp} AS s", {}, [tmp], {})
        columns: dict[str, Any] = {}
        for i, c in enumerate(data.column_names):
            if c not in text:
                columns[c] = data.column(c)
                into.source[c] = f"s.{q(c)}"
                continue
            encoded = pc.dictionary_encode(data.column(c).combine_chunks())  # one dictionary for all chunks
            if c not in into.dictionaries:
                ids = q(f"ad_pipeline_{uuid.uuid4().hex}")
                self.execute(f"CREATE TEMPORARY TABLE {ids} ON COMMIT DROP AS "
                             f"SELECT NULL::integer AS id, t.{q(c)} AS value FROM {table_sql} AS t WHERE false")
                into.dictionaries[c], into.sizes[c] = ids, 0
                into.tables.append(ids)
                into.source[c] = f"d{i}.value"
                into.from_sql += f" LEFT JOIN {ids} AS d{i} ON d{i}.id = s.{q(c)}"
            first, dictionary = into.sizes[c], encoded.dictionary
            self._copy_in(into.dictionaries[c], pa.table({
                "id": pa.array(np.arange(first, first + len(dictionary), dtype=np.int32)), "value": dictionary}))
            self.execute(f"ANALYZE {into.dictionaries[c]}")  # small; the bulk table needs none (sized by pages)
            columns[c] = pc.add(encoded.indices, pa.scalar(first, pa.int32())) if first else encoded.indices
            into.sizes[c] = first + len(dictionary)
        self._copy_in_binary(into.tables[0], pa.table(columns))
        return into

    def insert_arrow(self, table_sql: str, data: pa.Table) -> None:
        """``INSERT ... SELECT`` from the rows staged by binary ``COPY`` (see :meth:`_stage`)."""
        if not data.num_rows:
            return
        staged = self._stage(table_sql, data)
        cols = ", ".join(self.quote(c) for c in data.column_names)
        values = ", ".join(staged.source[c] for c in data.column_names)
        self.execute(f"INSERT INTO {table_sql} ({cols}) SELECT {values} FROM {staged.from_sql}")
        self.execute(f"DROP TABLE {', '.join(staged.tables)}")

    def update_from_arrow(self, table_sql: str, match: Sequence[str], data: pa.Table) -> None:
        """``UPDATE ... FROM`` the rows staged by binary ``COPY`` (see :meth:`_stage`).

        When an index leads with a text key column, each chunk updates its rows at once: the
        ``UPDATE`` names the chunk's keys and the server reaches their rows through the index.
        Otherwise each ``UPDATE`` would scan the whole table, so the chunks are only staged and
        one ``UPDATE`` runs as the transaction's deferred write (:meth:`write_deferred`).
        """
        if not data.num_rows:
            return
        text_keys = [c for c in match if _is_text(data.schema.field(c).type)]
        if text_keys and self._indexed(table_sql, text_keys):
            staged = self._stage(table_sql, data)
            self._update(table_sql, list(match), list(data.column_names), staged, restrict=True)
            return
        p = self._pending
        if p is not None and (p.table_sql, p.match, p.names) != (table_sql, list(match), data.column_names):
            self.write_deferred()
            p = None
        staged = self._stage(table_sql, data, into=None if p is None else p.staged)
        self._pending = _PendingUpdate(table_sql, list(match), data.column_names, staged)

    def _indexed(self, table_sql: str, keys: Sequence[str]) -> bool:
        """Whether an index of ``table_sql`` starts with one of ``keys`` (cached per table)."""
        cache_key = (table_sql, ",".join(keys))
        if cache_key not in self._key_indexed:
            cur = self.conn.cursor()
            try:
                cur.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a "
                    "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                    "WHERE i.indrelid = to_regclass(%s) AND a.attname = ANY(%s))",
                    [table_sql.replace("%%", "%"), list(keys)],
                )
                self._key_indexed[cache_key] = bool(cur.fetchone()[0])
            finally:
                cur.close()
        return self._key_indexed[cache_key]

    def _update(self, table_sql: str, match: list[str], names: list[str], staged: _Staged, *, restrict: bool) -> None:
        q = self.quote
        sets = ", ".join(f"{q(c)} = {staged.source[c]}" for c in names if c not in match)
        where = " AND ".join(f"t.{q(c)} = {staged.source[c]}" for c in match)
        if restrict:  # naming the chunk's keys lets the server reach their rows through the index
            where += "".join(f" AND t.{q(c)} IN (SELECT value FROM {staged.dictionaries[c]})"
                             for c in match if c in staged.dictionaries)
        self.execute(f"UPDATE {table_sql} AS t SET {sets} FROM {staged.from_sql} WHERE {where}")
        self.execute(f"DROP TABLE {', '.join(staged.tables)}")

    def begin(self) -> None:
        """BEGIN, sent now on this thread (psycopg opens the transaction with the first statement):
        for this transaction only, no JIT (compiling the big-looking staged joins takes longer than it
        saves) and at least 64 MB of work memory, so a chunk's join neither spills nor batches."""
        self.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', "
                     "greatest(pg_size_bytes(current_setting('work_mem')) / 1024, 65536)::text || 'kB', true)")

    def write_deferred(self) -> None:
        """Run the one ``UPDATE ... FROM`` that :meth:`update_from_arrow` deferred, if any."""
        p, self._pending = self._pending, None
        if p is not None:
            self._update(p.table_sql, p.match, p.names, p.staged, restrict=False)

    def rollback(self) -> None:
        self._pending = None
        super().rollback()


# PostgreSQL type OID -> the Arrow type its CSV text is parsed as (others stay text)
_ARROW_OF_OID: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(), 701: pa.float64(),
    25: pa.string(), 1043: pa.string(), 1082: pa.date32(), 1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}  # fmt: skip


def backend_for(hook: Any) -> Backend:
    """The backend matching the hook's dialect (DuckDB, PostgreSQL, or the generic DB-API one)."""
    name = type(hook).__name__.lower()
    dialect = ""
    try:
        dialect = str(getattr(hook, "dialect_name", "") or "").lower()
    except Exception:  # noqa: BLE001 - some hooks resolve the dialect through SQLAlchemy
        dialect = ""
    if "duckdb" in name or dialect == "duckdb":
        return DuckDBBackend(hook)
    if "postgres" in name or dialect.startswith("postgres"):
        return PostgresBackend(hook)
    return Backend(hook)
