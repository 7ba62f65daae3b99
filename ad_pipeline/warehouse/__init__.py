"""Anomaly scans of SQL tables through DB-API connections, with results written back in one transaction.

No Airflow here: the operators (:mod:`ad_pipeline.airflow`) and the CLI build a spec and call
the scan once.

* :mod:`.spec` -- :class:`ScanSpec` (what to scan, the window, the output), the summary, key hashing;
* :mod:`.sql` -- identifier quoting, bound parameters, the output's DDL, refused vs retryable errors;
* :mod:`.backends` -- DuckDB, PostgreSQL and generic DB-API reads/writes, and ``backend.transaction()``;
* :mod:`.pgcopy` -- PostgreSQL binary ``COPY`` of Arrow columns;
* :mod:`.detect` -- one engine batch call per chunk of whole series;
* :mod:`.scan` -- :func:`run_scan`: list keys, read chunks, detect, write, in ONE transaction;
* :mod:`.tabular` -- :func:`run_tabular_scan`: score a table with a tabular model.
"""

from __future__ import annotations

from .backends import Backend, DuckDBBackend, PostgresBackend, backend_for
from .scan import run_scan
from .spec import KINDS, ScanSpec, key_hash, plan_chunks, result_columns

__all__ = ["Backend", "DuckDBBackend", "PostgresBackend", "backend_for", "run_scan", "ScanSpec", "KINDS",
           "result_columns", "key_hash", "plan_chunks"]
