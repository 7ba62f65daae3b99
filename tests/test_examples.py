"""Every script of examples/ runs (small data) and writes nothing into the repository.

Each runs in a new interpreter from a temporary directory with ``AD_PIPELINE_OUT`` pointing there;
``git status`` of the repository is the same before and after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared"

# script -> (arguments, a line its output must hold)
RUNS: dict[str, tuple[list[str], str]] = {
    "detectors_on_real_data.py": (["realKnownCause/ec2_request_latency_system_failure.csv"], "wrote "),
    "duckdb_sql.py": ([], "is_anomaly"),
    "nexosis_cardio.py": ([str(SHARED / "tabular" / "cardio.csv")], "percentAnomalies"),
    "pandas_quickstart.py": ([], "expected_value"),
    "plot_anomalies.py": ([], "wrote "),
    "polars_quickstart.py": ([], "expected_value"),
    "rest_client.py": (["--self-serve"], "isAnomaly"),
}


def test_every_example_is_run() -> None:
    assert set(RUNS) == {p.name for p in EXAMPLES.glob("*.py")}


def _git_status() -> str:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return ""
    return subprocess.run([git, "status", "--porcelain", "--untracked-files=all", "--ignored"], cwd=ROOT,
                          capture_output=True, text=True).stdout


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs_and_writes_only_where_told(name: str, tmp_path: Path) -> None:
    args, expected = RUNS[name]
    if any(a.startswith(str(SHARED)) for a in args) or name == "detectors_on_real_data.py":
        if not SHARED.exists():
            pytest.skip(f"{SHARED} (the shared data) is absent")
    before = _git_status()
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "AD_PIPELINE_OUT": str(tmp_path / "out")})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert expected in proc.stdout, proc.stdout[-2000:]
    assert _git_status() == before
    if expected == "wrote ":
        written = Path(proc.stdout.split("wrote ")[-1].split()[0])
        written = written if written.is_absolute() else tmp_path / written
        assert written.is_file() and written.stat().st_size > 1000 and tmp_path in written.parents
