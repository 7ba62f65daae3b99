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

The parameters are those of :mod:`ad_pipeline.engine.params`' table, by name (``sensitivity := 95``);
one left NULL means the engine's default (period and granularity detected). An engine
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

from importlib import resources
from typing import TYPE_CHECKING, Any

from .common import quote_identifier, require_duckdb, require_pyarrow
from .tabular import register_model
from .udfs import register_udfs

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

__all__ = [
    "register",
    "connect",
    "register_model",
    "quote_identifier",
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
    require_pyarrow()
    register_udfs(con)
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
    duckdb = require_duckdb()
    return register(duckdb.connect(database, read_only=read_only, **kwargs))
