"""Fixtures for the Airflow provider tests: a throwaway PostgreSQL server, DuckDB files, an Airflow home.

Airflow reads its configuration when first imported: ``tests.support.airflow_env``, imported here
(before any test module imports Airflow), sets a temporary ``AIRFLOW_HOME`` with a SQLite metadata
database and ``dags/`` of the repository as the DAGs folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from ..support import pgserver
from ..support.airflow_env import AIRFLOW_ENV  # sets the environment before Airflow's first import

# --------------------------------------------------------------------------- Airflow metadata DB


@pytest.fixture(scope="session")
def airflow_db() -> dict[str, float]:
    """``airflow db migrate`` once per session (SQLite); returns its duration in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **AIRFLOW_ENV},
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    print(f"\n[airflow db migrate took {elapsed:.1f} s]")
    return {"migrate_seconds": elapsed}


# --------------------------------------------------------------------------- PostgreSQL


class Warehouse:
    """A fresh database for one test: its ``conn_id``, plus helpers to set up and inspect tables."""

    def __init__(self, kind: str, conn_id: str, dsn: str) -> None:
        self.kind, self.conn_id, self.dsn = kind, conn_id, dsn

    def _connect(self) -> Any:
        if self.kind == "duckdb":
            import duckdb

            return duckdb.connect(self.dsn)
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True)

    def run(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run statements (``;``-separated when no params) and return the last result rows."""
        con = self._connect()
        try:
            if self.kind == "duckdb":
                cur = con.execute(sql, params) if params is not None else con.execute(sql)
                try:
                    return cur.fetchall()
                except Exception:  # noqa: BLE001 - statements without a result
                    return []
            cur = con.execute(sql, params)
            return cur.fetchall() if cur.description else []
        finally:
            con.close()

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        con = self._connect()
        try:
            if self.kind == "duckdb":  # one Arrow insert: DuckDB's executemany is a statement per row
                import pyarrow as pa

                data = pa.table({f"c{i}": list(col) for i, col in enumerate(zip(*rows, strict=True))})
                con.register("ad_rows", data)
                con.execute(sql.split(" VALUES ")[0] + " SELECT * FROM ad_rows")
                con.unregister("ad_rows")
            else:
                sql = sql.replace("?", "%s")
                with con.cursor() as cur:
                    cur.executemany(sql, rows)
        finally:
            con.close()

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def checksum(self, table: str) -> tuple[int, str]:
        """(row count, md5 of every row in a canonical order) of ``table``."""
        t = self.quote(table)
        if self.kind == "duckdb":
            rows = self.run(f"SELECT md5(string_agg(CAST(r AS VARCHAR), '|' ORDER BY CAST(r AS VARCHAR))), count(*) "
                            f"FROM (SELECT * FROM {t}) r")
        else:
            rows = self.run(f"SELECT md5(string_agg(r::text, '|' ORDER BY r::text)), count(*) FROM {t} r")
        return int(rows[0][1]), str(rows[0][0])

    def table_exists(self, table: str) -> bool:
        rows = self.run("SELECT count(*) FROM information_schema.tables WHERE table_name = ?".replace(
            "?", "?" if self.kind == "duckdb" else "%s"), [table])
        return rows[0][0] > 0


@pytest.fixture
def duckdb_wh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    path = tmp_path / "warehouse.duckdb"
    conn_id = f"duck_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", "duckdb://" + quote(str(path), safe=""))
    return Warehouse("duckdb", conn_id, str(path))


@pytest.fixture
def postgres_wh(pg_server: pgserver.PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    import psycopg

    db = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.conninfo, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{db}"')
    conn_id = f"pg_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", f"postgres://{pg_server.user}@{pg_server.host}:{pg_server.port}/{db}"
    )
    yield Warehouse("postgres", conn_id, f"postgresql://{pg_server.user}@{pg_server.host}:{pg_server.port}/{db}")


@pytest.fixture(params=["duckdb", "postgres"])
def wh(request: pytest.FixtureRequest) -> Warehouse:
    """Each test using ``wh`` runs against a real DuckDB file and a real PostgreSQL server."""
    return request.getfixturevalue(f"{request.param}_wh")
