"""examples/nexosis_cardio.py runs end to end (the Nexosis quick start redone)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import CARDIO

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "nexosis_cardio.py"


def test_nexosis_cardio_example(cardio: dict) -> None:  # the fixture skips when cardio.csv is absent
    out = subprocess.run([sys.executable, str(EXAMPLE), str(CARDIO)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert "percentAnomalies = 0.0" in text
    assert "predict key 1780: anomaly -" in text  # the quick start's new row is anomalous
    auc = float(text.split("ROC-AUC ")[1].split(";")[0])
    assert auc >= 0.90
