"""The service adds nothing of its own: on every recorded Azure request (../shared/golden/) its
response body equals the library's answer for the same input."""

from __future__ import annotations

import json

import pytest
import requests

import ad_pipeline as ad
from ad_pipeline.rest.request import parse_request

from ..support.rest_server import GOLDEN, HEADERS

CASES = sorted(GOLDEN.glob("*.json")) if GOLDEN.is_dir() else []
CASES = [p for p in CASES if p.name != "LICENSE.txt"]


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


@pytest.mark.skipif(not CASES, reason=f"golden cases not found in {GOLDEN} (set AD_PIPELINE_GOLDEN)")
@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_request_gets_library_answer(live_url, session, path):
    case = json.loads(path.read_text())
    kind, body = case["type"], case["request"]
    response = session.post(
        f"{live_url}/anomalydetector/v1.1/timeseries/{kind}/detect", json=body, headers=HEADERS, timeout=120
    )
    values, timestamps, kwargs = parse_request(body)
    detect = ad.detect_entire if kind == "entire" else ad.detect_last
    try:
        want, status = detect(values, timestamps, **kwargs).to_dict(), 200
    except ad.AnomalyDetectorError as err:
        want, status = err.to_dict(), 400
    assert response.status_code == status, response.text[:300]
    assert response.json() == want


def test_golden_cases_present_or_skipped():
    # the suite must not silently pass without the recorded cases when they are expected to be here
    if GOLDEN.is_dir():
        assert len(CASES) >= 70
