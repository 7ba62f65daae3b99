"""What the DuckDB modules share: the optional imports (naming the extra to install) and identifier quoting."""

from __future__ import annotations

from typing import Any

from ..errors import MissingDependency

__all__ = ["require_pyarrow", "require_duckdb", "quote_identifier"]


def require_pyarrow() -> Any:
    """The ``pyarrow`` module, or :class:`~ad_pipeline.errors.MissingDependency` naming the ``[duckdb]`` extra."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingDependency.for_extra("pyarrow", "duckdb") from None
    return pa


def require_duckdb() -> Any:
    """The ``duckdb`` module, or :class:`~ad_pipeline.errors.MissingDependency` naming the ``[duckdb]`` extra."""
    try:
        import duckdb
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingDependency.for_extra("duckdb", "duckdb") from None
    return duckdb


def quote_identifier(name: str) -> str:
    """A SQL identifier in double quotes, inner quotes doubled (safe for any column/table name).

    >>> quote_identifier('my "odd" col')
    '"my ""odd"" col"'
    """
    return '"' + str(name).replace('"', '""') + '"'
