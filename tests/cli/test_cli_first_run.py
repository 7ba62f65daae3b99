"""What a new user meets: --help with any subset of extras, commands naming a missing extra, demo hints
that run as printed, progress outside a terminal, and the one-line notice before numba compiles."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ad_pipeline.errors import DISTRIBUTION


def cli(argv: list[str], absent: tuple[str, ...] = (), cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ad-pipeline argv`` in a new interpreter where the ``absent`` packages cannot be imported
    (``sys.modules[name] = None``: what Python does for a package that is not installed)."""
    code = (
        "import sys\n"
        f"for name in {list(absent)!r}:\n"
        "    sys.modules[name] = None\n"
        "from ad_pipeline.cli import main\n"
        f"sys.exit(main({argv!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=900)


SERVER = ("fastapi", "uvicorn", "starlette", "pydantic")
DUCKDB = ("duckdb", "pyarrow", "tqdm")


@pytest.mark.parametrize("absent", [SERVER, DUCKDB, SERVER + DUCKDB], ids=["no-server", "no-duckdb", "core-only"])
def test_help_works_with_any_subset_of_extras(absent: tuple[str, ...]) -> None:
    proc = cli(["--help"], absent)
    assert proc.returncode == 0, proc.stderr
    assert all(c in proc.stdout for c in ("scan", "last", "change-points", "demo", "serve"))


@pytest.mark.parametrize(("argv", "absent", "extra"), [
    (["serve", "--help"], SERVER, "server"),
    (["serve", "--port", "0"], ("uvicorn",), "server"),
    (["demo", "--db", "x.duckdb"], DUCKDB, "duckdb"),
    (["scan", "--db", "x.duckdb", "--table", "t"], ("duckdb",), "duckdb"),
    (["scan", "--help"], ("tqdm",), None),
])  # fmt: skip
def test_a_command_names_the_extra_it_misses(argv: list[str], absent: tuple[str, ...], extra: str | None,
                                             tmp_path: Path) -> None:
    proc = cli(argv, absent, cwd=tmp_path)
    if extra is None:
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"pip install '{DISTRIBUTION}[{extra}]'" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_demo_hints_run_as_printed_and_progress_shows_without_a_terminal(tmp_path: Path) -> None:
    proc = cli(["demo", "--db", "demo.duckdb", "--series", "20", "--points", "100"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # stderr is a pipe here: progress comes as lines, about every 10%
    steps = re.findall(r"ad-pipeline: (\d+)/20 series \((\d+)%\)", proc.stderr)
    assert len(steps) >= 5 and steps[-1] == ("20", "100"), proc.stderr
    hints = dict(re.findall(r"^(scan again|explore):\s+(.+)$", proc.stdout, flags=re.M))
    assert set(hints) == {"scan again", "explore"}, proc.stdout
    scan = subprocess.run(hints["scan again"], shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert scan.returncode == 0 and "scanned 20 series" in scan.stdout, scan.stderr
    explore = subprocess.run(hints["explore"], shell=True, cwd=tmp_path, capture_output=True, text=True,
                             timeout=600, env={**os.environ, "PATH": "/usr/bin:/bin"})  # not the venv's python
    assert explore.returncode == 0 and "expected_value" in explore.stdout, explore.stderr


@pytest.mark.slow
def test_one_line_before_the_kernels_compile_and_none_from_the_cache(tmp_path: Path) -> None:
    code = ("import numpy as np, ad_pipeline as ad\n"
            "ad.detect_entire(np.random.default_rng(0).normal(0, 1, 50), period=0)\n")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    from ad_pipeline.engine.compiling import MESSAGE

    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert cold.returncode == 0 and cold.stderr.count(MESSAGE) == 1, cold.stderr
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert warm.returncode == 0 and MESSAGE not in warm.stderr, warm.stderr
