"""Helpers of the REST service tests: keys, the Azure example request, a real server in a subprocess.

Used by tests/rest and the contract suite (tests/test_contract.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ad_pipeline.rest import KEY_HEADER, KEYS_ENV

from .net import free_port

KEY = "test-key-0123456789"
OTHER_KEY = "second-key"
HEADERS = {KEY_HEADER: KEY}
__all__ = ["GOLDEN", "HEADERS", "KEY", "KEYS_ENV", "OTHER_KEY", "azure_example_request", "start_server", "stop_server"]
GOLDEN = Path(os.environ.get("AD_PIPELINE_GOLDEN", Path(__file__).resolve().parents[3] / "shared" / "golden"))

# The example series of Azure's last-detect API reference (monthly, 1972-01 .. 1975-12).
AZURE_EXAMPLE_VALUES = [
    826, 799, 890, 900, 961, 935, 894, 855, 809, 810, 766, 805, 821, 773, 883, 898, 957, 924, 881, 837, 784, 791,
    760, 802, 828, 1030, 889, 902, 969, 947, 908, 867, 815, 812, 773, 813, 834, 782, 892, 903, 966, 937, 896, 858,
    817, 827, 797, 843,
]  # fmt: skip


def azure_example_request() -> dict:
    """The request body of Azure's documentation example (sensitivity 95, monthly)."""
    series = [
        {"timestamp": f"{1972 + i // 12}-{i % 12 + 1:02d}-01T00:00:00Z", "value": v}
        for i, v in enumerate(AZURE_EXAMPLE_VALUES)
    ]
    return {"series": series, "maxAnomalyRatio": 0.25, "sensitivity": 95, "granularity": "monthly"}


def start_server(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``ad-pipeline serve --port P *args`` (as ``python -m ad_pipeline.cli``); waits for /healthz."""
    import requests

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ad_pipeline.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()
        proc.wait()
