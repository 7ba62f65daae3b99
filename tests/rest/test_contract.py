"""Issue 18 over REST: the documented contract holds for every granularity, parameters are scalars,
timestamps are validated, oversized work is refused, a client hanging up is one INFO line."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from ..support.rest_server import HEADERS, KEY, start_server, stop_server

ENTIRE = "/anomalydetector/v1.1/timeseries/entire/detect"
LAST = "/anomalydetector/v1.1/timeseries/last/detect"
CHANGE = "/anomalydetector/v1.1/timeseries/changepoint/detect"


def _points(n=24, offset="Z"):
    days = np.arange(np.datetime64("2024-01-01"), np.datetime64("2024-01-01") + n)
    return [{"timestamp": f"{d}T00:00:00{offset}", "value": float(1 + (i % 7))} for i, d in enumerate(days)]


def _refused(client, path, body, code, *fragments):
    r = client.post(path, json=body, headers=HEADERS)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code, r.json()
    for f in fragments:
        assert f in r.json()["message"], r.json()


@pytest.mark.parametrize("path", [ENTIRE, LAST, CHANGE])
@pytest.mark.parametrize("granularity", [None, "none", "daily"])
def test_unsorted_and_duplicated_timestamps_are_invalid_series_for_every_granularity(client, path, granularity):
    extra = {} if granularity is None else {"granularity": granularity}
    pts = _points()
    _refused(client, path, {"series": pts[::-1], **extra}, "InvalidSeries", "sorted by timestamp")
    dup = [*pts[:5], pts[4], *pts[6:]]
    _refused(client, path, {"series": dup, **extra}, "InvalidSeries", "duplicated timestamp")


def test_last_detect_newest_first_is_refused_not_judged_on_the_oldest_point(client):
    pts = _points(48)
    pts[-1]["value"] = 500.0  # the newest point is the anomaly
    ok = client.post(LAST, json={"series": pts}, headers=HEADERS)
    assert ok.status_code == 200 and ok.json()["isAnomaly"] is True
    _refused(client, LAST, {"series": pts[::-1]}, "InvalidSeries", "sorted by timestamp")


@pytest.mark.parametrize(
    ("field", "value"),
    [("sensitivity", [95]), ("maxAnomalyRatio", [0.2]), ("period", [7]), ("granularity", ["daily"]),
     ("customInterval", {"v": 1}), ("imputeMode", ["auto"])],  # fmt: skip
)
def test_parameters_must_be_scalars(client, field, value):
    _refused(client, ENTIRE, {"series": _points(), field: value}, "BadArgument", f"'{field}'", "single")


def test_change_point_parameters_must_be_scalars(client):
    _refused(client, CHANGE, {"series": _points(), "stableTrendWindow": [5]}, "BadArgument", "'stableTrendWindow'")


@pytest.mark.parametrize("offset", ["+99:99", "+24:00", "-00:60"])
def test_impossible_utc_offsets_are_refused(client, offset):
    _refused(client, ENTIRE, {"series": _points(offset=offset)}, "BadArgument", offset)


def test_sensitivity_is_a_number_from_0_to_100_in_the_schema_as_in_the_engine(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["DetectRequest"]["properties"]["sensitivity"]
    number = next(s for s in schema["anyOf"] if s.get("type") != "null")
    assert number["type"] == "number" and number["minimum"] == 0 and number["maximum"] == 100
    for s in (99.5, 100, 0):
        assert client.post(ENTIRE, json={"series": _points(), "sensitivity": s}, headers=HEADERS).status_code == 200


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"stableTrendWindow": 10**7}, "InvalidModelArgument", "'stable_trend_window'"),
        ({"stableTrendWindow": 10**8}, "InvalidModelArgument", "'stable_trend_window'"),
        ({"stableTrendWindow": 2**62}, "InvalidModelArgument", "'stable_trend_window'"),
        ({"granularity": "hourly", "customInterval": 2_562_048}, "InvalidCustomInterval", "2562047"),
        ({"granularity": "monthly", "customInterval": 10**20}, "InvalidCustomInterval", "3504"),
    ],
)
def test_costly_or_overflowing_parameters_are_refused_at_once(client, body, code, fragment):
    _refused(client, CHANGE, {"series": _points(), **body}, code, fragment)  # before: 11-24 s of work, or a 500


def test_client_hanging_up_mid_upload_is_one_info_line():
    proc, url = start_server("--log-level", "info", env={"AD_PIPELINE_API_KEYS": KEY})
    port = int(url.rsplit(":", 1)[1])
    try:
        for _ in range(3):
            body = b'{"series": [' + b'{"value": 1.0},' * 100
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(
                    f"POST {ENTIRE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Ocp-Apim-Subscription-Key: {KEY}\r\nContent-Length: {4 * len(body)}\r\n\r\n".encode() + body
                )
            time.sleep(0.3)
        import requests

        assert requests.get(url + "/healthz", timeout=10).status_code == 200
    finally:
        stop_server(proc)
    log = proc.stdout.read() if proc.stdout else ""
    lines = log.splitlines()
    assert sum("client disconnected during the upload" in line for line in lines) == 3, log
    assert not [line for line in lines if "ERROR" in line or "Traceback" in line], log


def test_custom_interval_beyond_292_years_with_timestamps_is_refused_not_a_500(client):
    """The grid-size check of the server ran before the engine's parameter check (an OverflowError)."""
    body = {"series": _points(), "granularity": "hourly", "customInterval": 10**10}
    _refused(client, ENTIRE, body, "InvalidCustomInterval", "2562047")
