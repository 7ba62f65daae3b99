"""One ``local[2]`` SparkSession for the whole test session (tests/spark and the contract suite), and what
the Spark tests cost (a pytest plugin, registered in tests/conftest.py).

The session is small on purpose (CI budget: under 60 s and 1.5 GB for tests/spark): 512 MB
driver heap, 4 shuffle partitions, no UI, AQE partition coalescing off (it left one core idle
with UDF-heavy stages), Arrow batches of 200 rows (so that long test series straddle batches).
At the end pytest prints the wall time of the tests in tests/spark and the peak memory of the
JVM, its Python workers and the growth of the test process since the session started, together
(summed PSS: shared pages counted once).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARROW_BATCH_ROWS = 200
_HERE = Path(__file__).resolve().parents[1] / "spark"  # the folder whose tests are costed
_COST: dict[str, Any] = {"seconds": 0.0, "sampler": None}


def _pss_kb(pid: int) -> int:
    """Proportional set size of a live process in kB (shared pages split between their users; 0 if gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class _MemorySampler(threading.Thread):
    """Samples the summed PSS of the JVM, its Python workers and the test process's growth; keeps the peak."""

    def __init__(self, jvm_pid: int | None, base_kb: int) -> None:
        super().__init__(daemon=True)
        self.jvm_pid = jvm_pid
        self.base_kb = base_kb  # the test process before Spark started (other tests may have run)
        self.peak_kb = 0
        self.cpu: dict[int, float] = {}  # CPU seconds (user + system) of each process under the JVM
        self.cpu_base = sum(os.times()[:2])
        self.parts: dict[str, int] = {}
        self.stopped = threading.Event()

    def sample(self) -> None:
        import psutil

        parts = {"test process growth": max(_pss_kb(os.getpid()) - self.base_kb, 0)}
        if self.jvm_pid is not None:
            try:
                root = psutil.Process(self.jvm_pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                tree = []
            for p in tree:
                try:
                    name = "JVM" if p.name() == "java" else "Python workers" if "python" in p.name() else "other"
                except psutil.NoSuchProcess:
                    continue
                parts[name] = parts.get(name, 0) + _pss_kb(p.pid)
                try:
                    t = p.cpu_times()
                    self.cpu[p.pid] = max(self.cpu.get(p.pid, 0.0), t.user + t.system)
                except psutil.NoSuchProcess:
                    pass
        total = sum(parts.values())
        if total > self.peak_kb:
            self.peak_kb, self.parts = total, parts

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self.sample()


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):  # .ci/run installs it
        why = "the Spark tests need a Java runtime (apt-get install openjdk-17-jre-headless)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {why}")
        pytest.skip(why)
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run the test interpreter
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    base_kb = _pss_kb(os.getpid())
    session = (
        SparkSession.builder.master("local[2]")
        .appName("ad_pipeline-tests")
        .config("spark.driver.memory", "512m")
        .config("spark.driver.extraJavaOptions", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=64m")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.adaptive.coalescePartitions.enabled", "false")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # no "closing connection" lines after pytest's streams close
    proc = session.sparkContext._gateway.proc
    sampler = _MemorySampler(None if proc is None else proc.pid, base_kb)
    sampler.start()
    _COST["sampler"] = sampler
    yield session
    sampler.stopped.set()
    session.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Wall time of every test in this folder, its fixtures of every scope included (the session's start).

    pytest calls this hook for every test of the run (it is not scoped to this folder): other
    tests are not counted.
    """
    if _HERE not in Path(item.path).parents:
        yield
        return
    t0 = time.perf_counter()
    yield
    _COST["seconds"] += time.perf_counter() - t0
    if _COST["sampler"] is not None:
        _COST["sampler"].sample()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    sampler = _COST["sampler"]
    if sampler is None or not _COST["seconds"]:  # no session, or no test of tests/spark ran
        return
    parts = ", ".join(f"{k} {v / 1024:.0f} MB" for k, v in sampler.parts.items())
    cpu = sum(sampler.cpu.values()) + sum(os.times()[:2]) - sampler.cpu_base
    terminalreporter.write_line(
        f"tests/spark: {_COST['seconds']:.1f} s wall, {cpu:.0f} CPU s (test process + JVM + Python workers; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores), peak memory {sampler.peak_kb / 1024:.0f} MB (summed PSS "
        f"of the JVM, the Python workers and the test process's growth, sampled every 0.2 s: {parts}); CI budget 60 s, 1536 MB"
    )
