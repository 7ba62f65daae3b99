"""Suite-wide guard: under CI the shared data sets must be beside the repository.

Tests that read ``../shared`` (golden Azure cases, labeled benchmarks, the cardio table) skip when
it is absent on a developer's machine; under ``CI=true`` its absence fails the run instead, so CI
can never pass by skipping the data checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# shared session fixtures: a real REST server, a Dask LocalCluster, the Spark session (tests/support)
pytest_plugins = ("tests.support.sessions", "tests.support.spark_session")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NEEDED = ("golden", "bench/kpi", "bench/nab", "bench/score.py", "tabular/cardio.csv")


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("CI", "").lower() != "true":
        return
    missing = [p for p in NEEDED if not (SHARED / p).exists()]
    if missing:
        raise pytest.UsageError(f"CI=true but {SHARED} lacks {', '.join(missing)}: the data checks would be skipped.")
