"""HTTP behaviour of the service: refusals as Azure gave them (400/401/405/413), limits, documents."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

import ad_pipeline as ad
from ad_pipeline.rest import KEY_HEADER, create_app, load_keys
from ad_pipeline.rest.request import parse_request

from ..support.rest_server import HEADERS, KEY, OTHER_KEY, azure_example_request

ENTIRE = "/anomalydetector/v1.1/timeseries/entire/detect"
LAST = "/anomalydetector/v1.1/timeseries/last/detect"
CHANGE = "/anomalydetector/v1.1/timeseries/changepoint/detect"
PATHS = [f"/anomalydetector/{v}/timeseries/{k}/detect" for v in ("v1.0", "v1.1") for k in ("entire", "last", "changepoint")]


def _series(n=24, start="2024-01-01"):
    days = np.arange(np.datetime64(start), np.datetime64(start) + n)
    return [{"timestamp": f"{d}T00:00:00Z", "value": float(1 + (i % 7) + (i == n // 2) * 20)} for i, d in enumerate(days)]


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize("path", PATHS)
def test_every_endpoint_answers_with_a_key(client, path):
    r = client.post(path, json={"series": _series(), "granularity": "daily"}, headers=HEADERS)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("headers", [{}, {KEY_HEADER: "wrong"}, {KEY_HEADER: ""}, {KEY_HEADER: KEY + "x"}])
def test_missing_or_unknown_key_is_401(client, headers):
    r = client.post(LAST, json={"series": _series()}, headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == "Unauthorized"


def test_any_configured_key_is_accepted(client):
    assert client.post(LAST, json={"series": _series()}, headers={KEY_HEADER: OTHER_KEY}).status_code == 200


def test_key_is_checked_before_the_body(client):
    r = client.post(LAST, content=b"{not json", headers={KEY_HEADER: "wrong"})
    assert r.status_code == 401


def test_health_and_openapi_need_no_key(client):
    assert client.get("/healthz").json()["status"] == "ok"
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) == {*PATHS, "/healthz"}
    assert doc["components"]["securitySchemes"]["SubscriptionKey"]["name"] == KEY_HEADER
    assert {"DetectRequest", "ChangePointRequest", "TimeSeriesPoint", "EntireResponse"} <= set(
        doc["components"]["schemas"]
    )


def test_no_auth_must_be_explicit():
    with pytest.raises(ValueError, match="keys=None"):
        create_app(keys=[])
    with TestClient(create_app(keys=None)) as c:
        assert c.post(LAST, json={"series": _series()}).status_code == 200
        assert "securitySchemes" not in c.get("/openapi.json").json()["components"]


def test_load_keys(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("alpha\n# a comment\nbeta, gamma  # trailing comment\n\n")
    assert load_keys(f, environ={"AD_PIPELINE_API_KEYS": "delta,"}) == {"alpha", "beta", "gamma", "delta"}
    assert load_keys(None, environ={}) == set()


# --------------------------------------------------------------------------- methods, sizes, limits


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(client, method):
    r = client.request(method, ENTIRE, headers=HEADERS)
    assert r.status_code == 405
    assert r.json()["code"] == "MethodNotAllowed"
    assert "POST" in r.headers["allow"]


def test_unknown_path_is_404_json(client):
    r = client.post("/anomalydetector/v9/timeseries/entire/detect", json={}, headers=HEADERS)
    assert r.status_code == 404 and r.json()["code"] == "NotFound"


def test_oversized_body_is_413():
    app = create_app(keys={KEY}, max_body_bytes=2_000)
    big = json.dumps({"series": _series(60)}).encode()
    assert len(big) > 2_000
    with TestClient(app) as c:
        r = c.post(LAST, content=big, headers={**HEADERS, "Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "RequestTooLarge"

        # streamed without Content-Length (chunked): counted while reading
        def chunks():
            for i in range(0, len(big), 500):
                yield big[i : i + 500]

        r = c.post(LAST, content=chunks(), headers=HEADERS)
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert r.status_code == 413
        small = json.dumps({"series": _series(24)}).encode()
        assert len(small) < 2_000 and c.post(LAST, content=small, headers=HEADERS).status_code == 200


def test_oversized_body_is_413_on_a_real_server(live_url):
    import requests

    def chunks():  # ~4 MB, streamed: the default limit (2.2 MB) stops it
        yield b'{"series": ['
        for _ in range(60_000):
            yield b'{"timestamp": "2024-01-01T00:00:00Z", "value": 1.0},'
        yield b'{"value": 1}]}'

    r = requests.post(live_url + LAST, data=chunks(), headers=HEADERS, timeout=60)
    assert r.status_code == 413


def test_point_limit_default_8640(client):
    values = np.sin(np.arange(8641) / 10.0)
    body = {"series": [{"value": float(v)} for v in values]}
    r = client.post(LAST, json=body, headers=HEADERS)
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidSeries"
    assert "8640" in r.json()["message"] and "8641" in r.json()["message"]
    body["series"] = body["series"][:8640]
    assert client.post(LAST, json=body, headers=HEADERS).status_code == 200


def test_point_limit_configurable():
    with TestClient(create_app(keys={KEY}, max_points=30)) as c:
        assert c.post(LAST, json={"series": _series(30)}, headers=HEADERS).status_code == 200
        r = c.post(LAST, json={"series": _series(31)}, headers=HEADERS)
        assert r.status_code == 400 and "30" in r.json()["message"]
    with TestClient(create_app(keys={KEY}, max_points=9_000)) as c:
        body = {"series": [{"value": float(v)} for v in np.sin(np.arange(8_700) / 10.0)]}
        assert c.post(LAST, json=body, headers=HEADERS).status_code == 200


# --------------------------------------------------------------------------- 400: the library's refusals


def _body(**fields):
    return {"series": _series(), "granularity": "daily", **fields}


def _dup(body):
    body["series"][5]["timestamp"] = body["series"][4]["timestamp"]
    return body


def _unsorted(body):
    body["series"][4], body["series"][5] = body["series"][5], body["series"][4]
    return body


def _set_value(i, v):
    def edit(body):
        body["series"][i]["value"] = v
        return body

    return edit


VALIDATION_CASES = [
    # (request body, expected code): each refusal must equal the library's own error
    (_body(granularity="fortnightly"), "InvalidGranularity"),
    (_body(customInterval=0), "InvalidCustomInterval"),
    (_body(period=-1), "InvalidPeriod"),
    (_body(period=12), "InvalidModelArgument"),
    (_body(sensitivity=120), "InvalidModelArgument"),
    (_body(sensitivity="high"), "InvalidModelArgument"),
    (_body(maxAnomalyRatio=0.7), "InvalidModelArgument"),
    (_body(imputeMode="bogus"), "InvalidImputeMode"),
    (_body(imputeMode="fixed"), "InvalidImputeFixedValue"),
    (_body(boundaryVersion="V9"), "InvalidBoundaryVersion"),
    (_dup(_body()), "InvalidSeries"),
    (_unsorted(_body()), "InvalidSeries"),
    ({"series": _series()[:5], "granularity": "daily"}, "InvalidSeries"),
    (_set_value(3, 1e300)(_body()), "InvalidSeries"),
]


@pytest.mark.parametrize("body,code", VALIDATION_CASES, ids=[c for _, c in VALIDATION_CASES])
@pytest.mark.parametrize("kind", ["entire", "last"])
def test_refusals_are_the_librarys(client, body, code, kind):
    r = client.post(f"/anomalydetector/v1.1/timeseries/{kind}/detect", json=body, headers=HEADERS)
    assert r.status_code == 400
    values, timestamps, kwargs = parse_request(body)
    with pytest.raises(ad.AnomalyDetectorError) as err:
        (ad.detect_entire if kind == "entire" else ad.detect_last)(values, timestamps, **kwargs)
    assert err.value.code == code
    assert r.json() == err.value.to_dict()


CHANGE_POINT_CASES = [
    (_body(stableTrendWindow=2), "InvalidModelArgument"),
    (_body(threshold=1.5), "InvalidModelArgument"),
    (_body(granularity="fortnightly"), "InvalidGranularity"),
]


@pytest.mark.parametrize("body,code", CHANGE_POINT_CASES, ids=[c for _, c in CHANGE_POINT_CASES])
def test_change_point_refusals_are_the_librarys(client, body, code):
    r = client.post(CHANGE, json=body, headers=HEADERS)
    values = [p["value"] for p in body["series"]]
    timestamps = [p["timestamp"] for p in body["series"]]
    kwargs = {"granularity": body["granularity"], "stable_trend_window": body.get("stableTrendWindow"),
              "threshold": body.get("threshold")}
    with pytest.raises(ad.AnomalyDetectorError) as err:
        ad.detect_change_points(values, timestamps, **kwargs)
    assert (r.status_code, r.json()) == (400, err.value.to_dict())
    assert err.value.code == code


BAD_BODIES = [
    (b"", "Invalid json format, input data is Empty."),
    (b"{not json", "Invalid json format"),
    (b'{"series": [{"value": NaN}]}', "Invalid json format"),
    (b"\xff\xfe garbage", "Invalid json format"),
    (b"[" * 100_000 + b"]" * 100_000, "Invalid json format"),
    (b"[1, 2, 3]", "must be a JSON object"),
    (b'{"granularity": "daily"}', "The 'series' field is required in request."),
    (b'{"series": {"value": 1}}', "The 'series' field must be a list"),
    (b'{"series": [1, 2, 3]}', "The 'series' field must hold objects"),
    (json.dumps({"series": [{"value": "12"}] * 12}).encode(), "values must be numbers"),
    (json.dumps({"series": [{"value": True}] * 12}).encode(), "values must be numbers"),
    (json.dumps({"series": _series()[:1] + [{"value": 1}] * 11}).encode(), "timestamp for every point or for none"),
    (json.dumps({"series": [{"timestamp": "yesterday", "value": 1}] * 12}).encode(), "ISO-8601"),
]


@pytest.mark.parametrize("raw,message", BAD_BODIES, ids=[m[:30] for _, m in BAD_BODIES])
def test_malformed_bodies_are_400_bad_argument(client, raw, message):
    r = client.post(ENTIRE, content=raw, headers={**HEADERS, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "BadArgument"
    assert message in r.json()["message"]


# --------------------------------------------------------------------------- request forms


def _post(client, path, body):
    r = client.post(path, json=body, headers=HEADERS)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    "legacy,modern",
    [
        ({"imputeStrategy": {"imputeMode": "fixed", "imputeValue": 3.5}}, {"imputeMode": "fixed", "imputeFixedValue": 3.5}),
        ({"imputeStrategy": {"imputeMode": "linear"}}, {"imputeMode": "linear"}),
        ({"fillUpMode": "last"}, {"imputeMode": "previous"}),
        ({"fillUpMode": "no"}, {"imputeMode": "notFill"}),
        ({"fillUpMode": "fixed", "fixedValue": 0}, {"imputeMode": "fixed", "imputeFixedValue": 0}),
    ],
)
def test_v10_legacy_impute_fields(client, legacy, modern):
    series = [p for i, p in enumerate(_series(40)) if i not in (10, 11, 25)]  # missing days
    old = _post(client, "/anomalydetector/v1.0/timeseries/entire/detect", {"series": series, "granularity": "daily", **legacy})
    new = _post(client, ENTIRE, {"series": series, "granularity": "daily", **modern})
    mode = modern["imputeMode"]
    lib = ad.detect_entire(
        [p["value"] for p in series], [p["timestamp"] for p in series], granularity="daily",
        impute_mode=mode, impute_fixed_value=modern.get("imputeFixedValue"),
    )  # fmt: skip
    assert old == new == lib.to_dict()


def test_service_defaults(client):
    """Omitted fields get the service's defaults: sensitivity 99, ratio 0.25, V1, auto."""
    body = azure_example_request()
    del body["sensitivity"], body["maxAnomalyRatio"]
    values = [p["value"] for p in body["series"]]
    timestamps = [p["timestamp"] for p in body["series"]]
    got = _post(client, ENTIRE, body)
    want = ad.detect_entire(
        values, timestamps, granularity="monthly", sensitivity=99, max_anomaly_ratio=0.25,
        boundary_version="V1", impute_mode="auto",
    )  # fmt: skip
    assert got == want.to_dict()


def test_unknown_fields_are_ignored(client):
    body = {"series": _series(), "granularity": "daily", "needDetectorId": True, "alpha": 0.05}
    assert _post(client, LAST, body) == _post(client, LAST, {"series": _series(), "granularity": "daily"})


def test_points_without_timestamps(client):
    values = [float(v) for v in np.tile([1.0, 2.0, 3.0, 2.0], 6)]
    got = _post(client, ENTIRE, {"series": [{"value": v} for v in values], "period": 4})
    assert got == ad.detect_entire(values, period=4, granularity="none").to_dict()


def test_preview_api_version_is_served_but_undocumented(client):
    body = {"series": _series(), "granularity": "daily"}
    assert _post(client, "/anomalydetector/v1.1-preview.1/timeseries/last/detect", body) == _post(client, LAST, body)
    assert not any("preview" in p for p in client.get("/openapi.json").json()["paths"])


def test_integer_beyond_float_range_is_refused_not_500(client):
    body = {"series": [{"value": 1}] * 11 + [{"value": 10**400}]}
    r = client.post(ENTIRE, content=json.dumps(body), headers={**HEADERS, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidSeries"


@pytest.mark.parametrize("kind", ["changepoint", "auto"])
def test_sparse_grid_is_limited_too(client, kind):
    # 24 daily points declared as secondly data span 2 million grid points: refused before the engine runs
    # when the grid would be built (change-point detection would try to allocate terabytes; so would auto)
    body = {"series": _series(24), "granularity": "secondly"} | ({"method": "auto"} if kind == "auto" else {})
    path = f"/anomalydetector/v1.1/timeseries/{'entire' if kind == 'auto' else kind}/detect"
    r = client.post(path, json=body, headers=HEADERS)
    assert r.status_code == 400 and r.json()["code"] == "InvalidSeries"
    assert "1987201" in r.json()["message"] and "granularity" in r.json()["message"]
    # sparse series are fine up to 16 x the point limit (the engine imputes or skips the gaps)
    with TestClient(create_app(keys={KEY}, max_points=30)) as c:
        sparse = _series(29) + _series(1, start="2025-04-01")  # 30 points over 457 days <= 16 x 30
        assert c.post(LAST, json={"series": sparse, "granularity": "daily"}, headers=HEADERS).status_code == 200
        wide = _series(29) + _series(1, start="2025-06-01")  # 30 points over 518 days > 16 x 30
        r = c.post(LAST, json={"series": wide, "granularity": "daily"}, headers=HEADERS)
        assert r.status_code == 400 and "spans 518" in r.json()["message"]


@pytest.mark.parametrize("kind", ["entire", "last"])
def test_a_gap_of_decades_is_answered_as_azure_did(client, kind):
    # the Azure model fills no grid above 17,280 points and finds no period on a grid more than half
    # empty: it models the points alone, so the server does not refuse the grid (1.6e9 points here)
    series = [{"timestamp": f"2000-01-01T00:00:{s:02d}Z", "value": float(s % 5)} for s in range(40)]
    series.append({"timestamp": "2050-06-01T00:00:00Z", "value": 3.0})
    body = {"series": series, "granularity": "secondly"}
    got = _post(client, f"/anomalydetector/v1.1/timeseries/{kind}/detect", body)
    values, stamps, kw = parse_request(body)
    assert got == (ad.detect_entire if kind == "entire" else ad.detect_last)(values, stamps, **kw).to_dict()
    assert got["period"] == 0


def test_dotnet_timestamps_as_azure_took_them(client):
    body = azure_example_request()
    iso = _post(client, ENTIRE, body)
    for point in body["series"]:  # 1972-01-01T00:00:00Z -> "1/1/1972 12:00:00 AM " (.NET general date)
        y, m, d = (int(p) for p in point["timestamp"][:10].split("-"))
        point["timestamp"] = f"{m}/{d}/{y} 12:00:00 AM "
    assert _post(client, ENTIRE, body) == iso
    body["series"][7]["timestamp"] = "8/1/1972 25:00:00 AM"
    r = client.post(ENTIRE, json=body, headers=HEADERS)
    assert r.status_code == 400 and r.json()["code"] == "BadArgument"
    assert "'8/1/1972 25:00:00 AM'" in r.json()["message"] and "index 7" in r.json()["message"]


def test_preview_paths_answer_in_pascal_case_with_the_same_refusals(client):
    body = azure_example_request()
    for kind, path in (("entire", ENTIRE), ("last", LAST)):
        preview = f"/anomalyfinder/v2.0/timeseries/{kind}/detect"
        want = {k[0].upper() + k[1:]: v for k, v in _post(client, path, body).items() if k != "severity"}
        assert _post(client, preview, body) == want
        bad = body | {"sensitivity": 120}
        r1, r2 = (client.post(p, json=bad, headers=HEADERS) for p in (path, preview))
        assert (r1.status_code, r1.json()) == (r2.status_code, r2.json()) == (400, r1.json())
        assert client.post(preview, json=body).status_code == 401


def test_method_extension_reaches_the_engine(client) -> None:
    body = azure_example_request() | {"method": "auto"}
    r = client.post("/anomalydetector/v1.1/timeseries/entire/detect", json=body, headers=HEADERS)
    assert r.status_code == 200
    values, stamps, kw = parse_request(body)
    assert kw["method"] == "auto"
    assert r.json() == ad.detect_entire(values, stamps, **kw).to_dict()
    assert r.json() != ad.detect_entire(values, stamps, **(kw | {"method": "azure"})).to_dict()
