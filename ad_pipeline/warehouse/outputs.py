"""Where the CLI's results go: a DuckDB table replaced atomically, or a .parquet / .csv file.

Both take the result pieces as they come (memory stays at one piece) and make them visible only
when the whole scan succeeded: ``close(ok=False)`` leaves the old table or file untouched.
"""

from __future__ import annotations

import os
from typing import Any

from . import InputError
from .local import quote

CHECKPOINT_ROWS = 1_000_000  # DuckDB CHECKPOINT after this many written rows (bounds memory)


class TableWriter:
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


class FileWriter:
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

