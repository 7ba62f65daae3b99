"""SQL text of a scan: identifier quoting, bound parameters, the source, the window, the output's DDL,
and which database errors a retry cannot fix.

Values always travel as bound parameters (or bulk data, see :mod:`.backends`); identifiers are
quoted here. Nothing in this module talks to a database but :func:`output_ddl` (through
``backend.column_types``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import AnomalyDetectorError, BadArgument

if TYPE_CHECKING:
    from .backends import Backend
    from .spec import ScanSpec


class Params:
    """Collects bound values while SQL is built; renders each placeholder in the driver's style.

    >>> p = Params("numeric_dollar")
    >>> p.add(1) + " AND " + p.add(2), p.values
    ('$1 AND $2', [1, 2])
    """

    def __init__(self, style: str) -> None:
        self.style = style
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        if self.style == "numeric_dollar":
            return f"${len(self.values)}"
        if self.style == "qmark":
            return "?"
        return "%s"


def ansi_quote(name: str) -> str:
    """Double-quote an identifier (SQL standard; DuckDB, PostgreSQL).

    >>> ansi_quote('metrics "daily"; drop table x')
    '"metrics ""daily""; drop table x"'
    """
    if not isinstance(name, str) or not name or "\x00" in name:
        raise BadArgument(f"An identifier must be a non-empty string without NUL characters, got {name!r}.")
    return '"' + name.replace('"', '""') + '"'


class ScanSql:
    """SQL text for one scan: the source, the window predicate, key lists (values always bound)."""

    def __init__(self, spec: ScanSpec, backend: Backend, *, read: bool) -> None:
        self.spec, self.b, self.read = spec, backend, read
        self.q = backend.quote_read if read else backend.quote

    def source(self) -> str:
        if self.spec.table is not None:
            return self.b.qualified(self.spec.table, read=self.read)
        return source_query(self.b, self.spec.sql, read=self.read)

    def window(self, p: Params, start: Any, end: Any) -> str:
        ts = self.q(self.spec.timestamp)
        conds = [] if self.spec.keep_null_timestamps else [f"{ts} IS NOT NULL"]
        if start is not None:
            conds.append(f"{ts} >= {p.add(start)}")
        if end is not None:
            conds.append(f"{ts} < {p.add(end)}")
        return " AND ".join(conds) or "1 = 1"

    def key_in(self, p: Params, keys: Sequence[tuple[Any, ...]], extra: Sequence[str] = ()) -> str:
        return key_in(self.q, [*self.spec.keys, *extra], p, keys)

    def key_range(self, p: Params, first: tuple[Any, ...], last: tuple[Any, ...]) -> str:
        return key_range(self.q, self.spec.keys, p, first, last)


def source_query(backend: Backend, sql: str | None, *, read: bool) -> str:
    """A SELECT as a FROM item; a literal ``%`` doubled where statements use ``%s`` placeholders."""
    body = (sql or "").strip().rstrip(";").strip()
    if (backend.read_style if read else backend.write_style) == "format":
        body = body.replace("%", "%%")
    return f"({body}) AS ad_source"


def key_in(quote: Any, columns: Sequence[str], p: Params, keys: Sequence[tuple[Any, ...]]) -> str:
    """``col IN (...)`` or ``(c1, c2) IN ((...), ...)`` with every key value bound.

    >>> p = Params("qmark")
    >>> key_in(ansi_quote, ["a", "b"], p, [(1, "x"), (2, "y")]), p.values
    ('("a", "b") IN ((?, ?), (?, ?))', [1, 'x', 2, 'y'])
    """
    cols = [quote(k) for k in columns]
    if len(cols) == 1:
        return f"{cols[0]} IN ({', '.join(p.add(k[0]) for k in keys)})"
    tuples = ", ".join("(" + ", ".join(p.add(v) for v in k) + ")" for k in keys)
    return f"({', '.join(cols)}) IN ({tuples})"


def key_range(quote: Any, columns: Sequence[str], p: Params, first: tuple[Any, ...], last: tuple[Any, ...]) -> str:
    """``first <= key <= last`` in the database's own key order, spelled out lexicographically (every
    backend reads it; a range scan is much cheaper than a long ``IN`` list), NULL keys left out.

    >>> p = Params("qmark")
    >>> key_range(ansi_quote, ["a", "b"], p, (1, "x"), (2, "y")), p.values
    ('"a" IS NOT NULL AND "b" IS NOT NULL AND ("a" > ? OR ("a" = ? AND "b" >= ?)) AND ("a" < ? OR ("a" = ? AND "b" <= ?))', [1, 1, 'x', 2, 2, 'y'])
    """
    cols = [quote(k) for k in columns]

    def bound(key: tuple[Any, ...], op: str, i: int = 0) -> str:
        if i == len(cols) - 1:
            return f"{cols[i]} {op}= {p.add(key[i])}"
        return f"{cols[i]} {op} {p.add(key[i])} OR ({cols[i]} = {p.add(key[i])} AND {bound(key, op, i + 1)})"

    not_null = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    lo, hi = bound(first, ">"), bound(last, "<")
    return f"{not_null} AND ({lo}) AND ({hi})" if len(cols) > 1 else f"{not_null} AND {lo} AND {hi}"


# --------------------------------------------------------------------------- types and DDL


def sql_type(backend: Backend, typ: str) -> str:
    """The database type of a result type class (``bool``, ``double``, ``bigint``, ``text``, ``tstz``)."""
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
#: errors of a twin task creating the same table at the same moment (the DDL is then prepared again)
TWIN_ERRORS = {"UniqueViolation", "DuplicateTable", "DuplicateObject", "DuplicateColumn", "IntegrityError",
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
            ddl.append(f"ALTER TABLE {table} ADD COLUMN {backend.quote(name)} {sql_type(backend, typ)}")
        elif found and found.split("(")[0].strip().upper() not in _COMPATIBLE[typ]:
            wrong.append(f"{name!r} is {found}, expected {sql_type(backend, typ)}")
    if wrong:
        raise BadArgument(
            f"The {what} {table.replace('%%', '%')} has result column(s) of another type: {'; '.join(wrong)}. "
            "Results are not converted: change or drop the column(s), or write to another table."
        )
    return ddl


# --------------------------------------------------------------------------- errors: retry or refuse


def is_bad_request(exc: BaseException) -> bool:
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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


@contextlib.contextmanager
def refusing(what: str) -> Iterator[None]:
    """A request the database refuses (a constraint, a conversion, an unknown name) leaves this block
    as a :class:`BadArgument` naming ``what`` and carrying the database's own error (no retry can fix
    it); a passing fault (a lost connection) leaves as it came, so Airflow retries."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, AnomalyDetectorError) or not is_bad_request(exc):
            raise
        raise BadArgument(f"{what}: {first_line(exc)}") from exc


class TwinDDL(Exception):
    """The DDL failed as it does when a twin task created the same output a moment earlier."""


def run_ddl(backend: Backend, ddl: Sequence[str], what: str, *, twin_retry: bool) -> None:
    """Run the output's DDL (inside the write transaction). With ``twin_retry``, an error of a twin
    task's concurrent CREATE raises :class:`TwinDDL`: roll back, prepare the DDL again, retry once."""
    with refusing(f"Preparing the {what} failed"):
        for stmt in ddl:
            try:
                backend.execute(stmt)
            except Exception as exc:
                if twin_retry and {c.__name__ for c in type(exc).__mro__} & TWIN_ERRORS:
                    raise TwinDDL(first_line(exc)) from exc
                raise


def source_error(spec: ScanSpec, exc: BaseException) -> BadArgument:
    what = f"table {'.'.join(spec.table)!r}" if spec.table else "sql query"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    cols = ", ".join(repr(c) for c in [*spec.keys, spec.timestamp, *spec.values])
    return BadArgument(f"The source {what} with columns {cols} could not be read: {first}")
