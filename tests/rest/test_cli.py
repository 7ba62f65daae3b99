"""``ad-pipeline serve`` (run as ``python -m ad_pipeline.cli serve``): keys, --no-auth, --max-points."""

from __future__ import annotations

import os
import subprocess
import sys

import requests

from ad_pipeline.rest import KEY_HEADER, KEYS_ENV, build_parser

from ..support.rest_server import azure_example_request, start_server, stop_server

LAST = "/anomalydetector/v1.1/timeseries/last/detect"


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != KEYS_ENV}
    return subprocess.run(
        [sys.executable, "-m", "ad_pipeline.cli", "serve", *args], env={**clean, **env}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_refuses_to_start_without_keys():
    r = _run("--port", "1", env={})
    assert r.returncode == 2
    assert "no subscription keys configured" in r.stderr and "--no-auth" in r.stderr


def test_no_auth_and_keys_together_is_refused():
    r = _run("--port", "1", "--no-auth", env={KEYS_ENV: "k"})
    assert r.returncode == 2 and "--no-auth" in r.stderr


def test_parser_defaults():
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.max_points, args.no_auth, args.keys_file) == (
        "127.0.0.1", 8080, 8640, False, None,
    )  # fmt: skip


def test_keys_file_and_max_points(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("from-file\n")
    proc, url = start_server("--keys-file", str(keys), "--max-points", "40", env={KEYS_ENV: ""})
    try:
        body = azure_example_request()  # 48 points
        r = requests.post(url + LAST, json=body, headers={KEY_HEADER: "from-file"}, timeout=120)
        assert r.status_code == 400 and "more than 40 points" in r.json()["message"]
        # a too-short series is refused by validation (no model run, so no JIT warm-up in this process)
        body["series"] = body["series"][:5]
        assert requests.post(url + LAST, json=body, headers={KEY_HEADER: "other"}, timeout=60).status_code == 401
        r = requests.post(url + LAST, json=body, headers={KEY_HEADER: "from-file"}, timeout=60)
        assert r.status_code == 400 and r.json()["code"] == "InvalidSeries"
    finally:
        stop_server(proc)


def test_no_auth_server():
    proc, url = start_server("--no-auth", env={KEYS_ENV: ""})
    try:
        body = azure_example_request()
        body["series"] = body["series"][:5]
        r = requests.post(url + LAST, json=body, timeout=60)  # no key, yet past authentication
        assert r.status_code == 400 and r.json()["code"] == "InvalidSeries"
    finally:
        stop_server(proc)


def test_unreadable_keys_file_is_a_clear_error(tmp_path):
    r = _run("--port", "1", "--keys-file", str(tmp_path / "missing"), env={})
    assert r.returncode == 2 and "cannot read --keys-file" in r.stderr


def test_server_module_runs_the_same_command():
    r = subprocess.run([sys.executable, "-m", "ad_pipeline.rest", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--no-auth" in r.stdout and "--max-points" in r.stdout


def test_several_workers(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("worker-key\n")
    proc, url = start_server("--workers", "2", "--keys-file", str(keys), "--max-points", "40", env={KEYS_ENV: ""})
    try:
        body = azure_example_request()
        assert requests.post(url + LAST, json=body, timeout=60).status_code == 401
        r = requests.post(url + LAST, json=body, headers={KEY_HEADER: "worker-key"}, timeout=60)
        assert r.status_code == 400 and "more than 40 points" in r.json()["message"]  # the workers' own limit
    finally:
        stop_server(proc)
