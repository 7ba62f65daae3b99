"""Anomaly scans of SQL tables through DB-API connections, with results written back in one transaction.

No Airflow here: the operators (:mod:`ad_pipeline.airflow`) and the CLI build a spec and call
the scan once.

* :mod:`.spec` -- :class:`ScanSpec` (what to scan, the window, the output), the summary, key hashing;
* :mod:`.sql` -- identifier quoting, bound parameters, the output's DDL, refused vs retryable errors;
* :mod:`.backends` -- DuckDB, PostgreSQL and generic DB-API reads/writes, and ``backend.transaction()``;
* :mod:`.pgcopy` -- PostgreSQL binary ``COPY`` of Arrow columns;
* :mod:`.detect` -- one engine batch call per chunk of whole series;
* :mod:`.scan` -- :func:`run_scan`: list keys, read chunks, detect, write, in ONE transaction;
* :mod:`.tabular` -- :func:`run_tabular_scan`: score a table with a tabular model;
* :mod:`.local` and :mod:`.outputs` -- the command line's scan of a DuckDB table or a CSV / Parquet
  file (a source view over :mod:`.scan`'s reads), into a table replaced atomically or a file.

Import the modules themselves (``from ad_pipeline.warehouse.scan import run_scan``): this package
imports nothing heavy.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(Exception):
    """Bad input to a command-line scan (exit status 2): the message names the problem.

    (Here, not in :mod:`.local`, so that the command line can catch it without importing pyarrow.)
    """
