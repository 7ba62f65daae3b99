"""Real clients, unchanged except for the endpoint and the key, against a real server.

1. The Python quick-start code of Azure's documentation (``requests.post`` with the JSON body and
   the ``Ocp-Apim-Subscription-Key`` header), copied as published.
2. Microsoft's ``azure-ai-anomalydetector`` SDK (3.0.0b6): univariate entire, last and change-point.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

# --------------------------------------------------------------------------- Azure's quick start
# Copied from the quick starts (Python, "detect.py" / "send_request"); only endpoint and key change.
import requests  # noqa: E402

import ad_pipeline as ad

from ..support.rest_server import KEY, azure_example_request


def send_request(endpoint, url, subscription_key, request_data):
    headers = {'Content-Type': 'application/json', 'Ocp-Apim-Subscription-Key': subscription_key}
    response = requests.post(endpoint+url, data=json.dumps(request_data), headers=headers)
    if response.status_code == 200:
        return json.loads(response.content.decode("utf-8"))
    else:
        print(response.status_code)
        raise Exception(response.text)


def detect(url, subscription_key, request_data):
    headers = {'Content-Type': 'application/json', 'Ocp-Apim-Subscription-Key': subscription_key}
    response = requests.post(url, data=json.dumps(request_data), headers=headers)
    if response.status_code == 200:
        return json.loads(response.content.decode("utf-8"))
    else:
        print(response.status_code)
        raise Exception(response.text)
# --------------------------------------------------------------------------- end of the copied code


def _library_args(body):
    values = np.array([p["value"] for p in body["series"]], dtype=float)
    timestamps = [p["timestamp"] for p in body["series"]]
    kw = dict(granularity="monthly", sensitivity=95, max_anomaly_ratio=0.25)
    return values, timestamps, kw


def test_quickstart_entire(live_url):
    body = azure_example_request()
    batch_detection_url = "/anomalydetector/v1.0/timeseries/entire/detect"
    result = send_request(live_url, batch_detection_url, KEY, body)
    values, timestamps, kw = _library_args(body)
    assert result == ad.detect_entire(values, timestamps, **kw).to_dict()
    anomalies = result["isAnomaly"]  # the quick start then lists the flagged positions
    assert len(anomalies) == len(body["series"])
    assert [x for x in range(len(anomalies)) if anomalies[x]] == np.flatnonzero(
        ad.detect_entire(values, timestamps, **kw).is_anomaly
    ).tolist()


def test_quickstart_last(live_url):
    body = azure_example_request()
    endpoint = live_url + "/anomalydetector/v1.1/timeseries/last/detect"
    result = detect(endpoint, KEY, body)
    values, timestamps, kw = _library_args(body)
    assert result == ad.detect_last(values, timestamps, **kw).to_dict()
    assert set(result) >= {"isAnomaly", "expectedValue", "upperMargin", "lowerMargin", "period", "suggestedWindow"}


def test_quickstart_refusal_is_readable(live_url):
    body = azure_example_request()
    body["series"] = body["series"][:5]
    with pytest.raises(Exception) as info:
        detect(live_url + "/anomalydetector/v1.0/timeseries/last/detect", KEY, body)
    err = json.loads(str(info.value))
    assert err["code"] == "InvalidSeries" and "12" in err["message"]


# --------------------------------------------------------------------------- Microsoft's SDK

sdk = pytest.importorskip("azure.ai.anomalydetector")


def _sdk_client(url, key=KEY):
    from azure.ai.anomalydetector import AnomalyDetectorClient
    from azure.core.credentials import AzureKeyCredential

    return AnomalyDetectorClient(endpoint=url, credential=AzureKeyCredential(key))


def _sdk_series():
    from azure.ai.anomalydetector.models import TimeSeriesPoint

    return [
        TimeSeriesPoint(timestamp=dt.datetime(1972 + i // 12, i % 12 + 1, 1, tzinfo=dt.UTC), value=v)
        for i, v in enumerate(p["value"] for p in azure_example_request()["series"])
    ]


def test_sdk_entire_and_last(live_url):
    from azure.ai.anomalydetector.models import TimeGranularity, UnivariateDetectionOptions

    client = _sdk_client(live_url)
    options = UnivariateDetectionOptions(
        series=_sdk_series(), granularity=TimeGranularity.MONTHLY, sensitivity=95, max_anomaly_ratio=0.25
    )
    values, timestamps, kw = _library_args(azure_example_request())

    entire = client.detect_univariate_entire_series(options)
    want = ad.detect_entire(values, timestamps, **kw)
    assert entire.period == want.period
    assert entire.is_anomaly == want.is_anomaly.tolist()
    assert entire.is_positive_anomaly == want.is_positive_anomaly.tolist()
    np.testing.assert_array_equal(entire.expected_values, want.expected_values)
    np.testing.assert_array_equal(entire.upper_margins, want.upper_margins)
    np.testing.assert_array_equal(entire.severity, want.severity)

    last = client.detect_univariate_last_point(options)
    want_last = ad.detect_last(values, timestamps, **kw)
    assert last.is_anomaly == want_last.is_anomaly
    assert last.expected_value == want_last.expected_value
    assert last.upper_margin == want_last.upper_margin
    assert last.suggested_window == want_last.suggested_window
    assert last.period == want_last.period


def test_sdk_change_points(live_url):
    from azure.ai.anomalydetector.models import TimeGranularity, UnivariateChangePointDetectionOptions

    client = _sdk_client(live_url)
    result = client.detect_univariate_change_point(
        UnivariateChangePointDetectionOptions(
            series=_sdk_series(), granularity=TimeGranularity.MONTHLY, stable_trend_window=5, threshold=0.9
        )
    )
    values, timestamps, _ = _library_args(azure_example_request())
    want = ad.detect_change_points(values, timestamps, granularity="monthly", stable_trend_window=5, threshold=0.9)
    assert result.period == want.period
    assert result.is_change_point == want.is_change_point.tolist()
    np.testing.assert_array_equal(result.confidence_scores, want.confidence_scores)


def test_sdk_errors(live_url):
    from azure.ai.anomalydetector.models import UnivariateDetectionOptions
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    options = UnivariateDetectionOptions(series=_sdk_series()[:5], granularity="monthly")
    with pytest.raises(HttpResponseError) as info:
        _sdk_client(live_url).detect_univariate_entire_series(options)
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidSeries"

    with pytest.raises(ClientAuthenticationError) as auth:
        _sdk_client(live_url, key="not-a-key").detect_univariate_last_point(options)
    assert auth.value.status_code == 401
