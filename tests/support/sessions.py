"""Fixtures of servers and clusters shared by several test folders (a pytest plugin, registered in tests/conftest.py).

- ``live_url``: a real ``ad-pipeline serve`` (uvicorn) on a free loopback port, keys from the
  environment variable (tests/rest, the contract suite);
- ``dask_client``: a dask.distributed ``LocalCluster`` of two worker processes, per test module
  (tests/dask, the contract suite);
- ``pg_server``: a throwaway PostgreSQL server (tests/airflow, tests/tabular; each test makes its
  own database in it).

The Spark session lives in ``tests.support.spark_session`` with the cost report of tests/spark.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from . import pgserver


@pytest.fixture(scope="session")
def live_url() -> Iterator[str]:
    """The base URL of a real server started for the session (stopped at its end)."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from .rest_server import KEY, KEYS_ENV, OTHER_KEY, start_server, stop_server

    proc, url = start_server(env={KEYS_ENV: f"{KEY},{OTHER_KEY}"})
    try:
        yield url
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    """A ``distributed.Client`` on a LocalCluster of 2 worker processes x 1 thread, 1 GiB each.

    One per test module, not per session: a live Client is dask's default scheduler (and makes the
    p2p shuffle the default), which must not reach other tests (the doctest of ``ad_pipeline.dask``
    computes with ``scheduler="sync"``, where a p2p shuffle fails).
    """
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit="1GiB"
    ) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.PostgresServer]:
    """A throwaway PostgreSQL server for the session (initdb in a temp dir, stopped at the end)."""
    if pgserver.find_pg_bin() is None:
        msg = "PostgreSQL server binaries not found (apt-get install -y postgresql)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg}; CI=true requires them.")
        pytest.skip(msg)
    server = pgserver.start_postgres()
    try:
        yield server
    finally:
        server.stop()
