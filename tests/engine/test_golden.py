"""Every recorded Azure case replays to Azure's answer (judged as the original test suite did)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.golden import GOLDEN_DIR, load_cases, run_case  # noqa: E402

CASES = load_cases(GOLDEN_DIR) if GOLDEN_DIR.is_dir() else []


@pytest.mark.skipif(not CASES, reason="golden cases not found")
@pytest.mark.parametrize(("name", "case"), CASES, ids=[name for name, _ in CASES])
def test_golden_case(name: str, case: dict) -> None:
    outcome = run_case(name, case)
    assert outcome.ok, "; ".join(outcome.reasons)
