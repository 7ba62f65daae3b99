"""The Azure request parser: one mapping of camelCase bodies, strict through the engine's checks."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import ad_pipeline as ad
from ad_pipeline.errors import BadArgument, InvalidGranularity, InvalidImputeMode, InvalidModelArgument
from ad_pipeline.rest.request import parse_request


def _body(**fields: object) -> dict:
    series = [{"timestamp": f"2024-01-{d:02d}T00:00:00Z", "value": float(d % 7)} for d in range(1, 29)]
    return {"series": series, **fields}


def test_fields_map_to_snake_case_and_omitted_ones_take_the_service_defaults() -> None:
    values, ts, kw = parse_request(
        _body(granularity="daily", customInterval=1, maxAnomalyRatio=0.1, period=7)
    )
    assert len(values) == 28 and ts is not None and len(ts) == 28
    assert kw == {
        "granularity": "daily",
        "custom_interval": 1,
        "max_anomaly_ratio": 0.1,
        "period": 7,
    }
    # an omitted field takes the engine's default, which is the service's (sensitivity 99, ...)
    assert inspect.signature(ad.detect_entire).parameters["sensitivity"].default == 99
    assert ad.detect_entire(values, ts, **kw).to_dict() == ad.detect_entire(values, ts, sensitivity=99, **kw).to_dict()


@pytest.mark.parametrize(
    ("legacy", "mode", "value"),
    [
        ({"imputeStrategy": {"imputeMode": "fixed", "imputeValue": 3}}, "fixed", 3),
        ({"imputeStrategy": {"imputeMode": "zero"}}, "zero", None),
        ({"fillUpMode": "last"}, "previous", None),
        ({"fillUpMode": "no"}, "notFill", None),
        ({"fillUpMode": "fixed", "fixedValue": 2.5}, "fixed", 2.5),
        ({"imputeMode": "linear"}, "linear", None),
    ],
)
def test_legacy_impute_fields(legacy: dict, mode: str, value: float | None) -> None:
    _, _, kw = parse_request(_body(**legacy))
    assert kw["impute_mode"] == mode
    assert kw.get("impute_fixed_value") == value


def test_missing_series_and_unknown_fields_are_refused() -> None:
    with pytest.raises(BadArgument, match="'series' field is required"):
        parse_request({"granularity": "daily"})
    with pytest.raises(BadArgument, match="Unknown request field"):
        parse_request(_body(sensitivty=95))
    with pytest.raises(BadArgument, match="must be numbers"):
        parse_request({"series": [{"value": "abc"}] * 12})


def test_null_values_are_missing_points() -> None:
    body = _body()
    body["series"][3]["value"] = None
    values, _, _ = parse_request(body)
    assert np.isnan(values[3]) and np.isfinite(np.delete(values, 3)).all()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"granularity": "fortnightly"}, InvalidGranularity),
        ({"imputeMode": "spline"}, InvalidImputeMode),
        ({"sensitivity": 120}, InvalidModelArgument),
        ({"maxAnomalyRatio": 0.7}, InvalidModelArgument),
    ],
)
def test_bad_values_raise_the_engines_errors(fields: dict, error: type) -> None:
    values, ts, kw = parse_request(_body(**fields))
    with pytest.raises(error):
        ad.detect_entire(values, ts, **kw)


def test_null_fields_count_as_omitted() -> None:
    from ad_pipeline.rest.request import parse_request

    body = {"series": [{"timestamp": f"2024-01-{d:02d}T00:00:00Z", "value": d} for d in range(1, 13)]}
    _, _, kw = parse_request(body | {"sensitivity": None, "period": None, "granularity": "daily"})
    assert kw == {"granularity": "daily"}


def test_change_point_requests_take_their_own_fields() -> None:
    from ad_pipeline.rest.request import parse_request

    body = {
        "series": [{"timestamp": f"2024-01-{d:02d}T00:00:00Z", "value": d} for d in range(1, 13)],
        "granularity": "daily",
        "stableTrendWindow": 5,
        "threshold": 0.9,
        "sensitivity": 95,  # a detect field: ignored by change-point detection, as the service did
    }
    _, _, kw = parse_request(body, "changepoint")
    assert kw == {"granularity": "daily", "stable_trend_window": 5, "threshold": 0.9}
    with pytest.raises(BadArgument, match="stableTrendWindow"):
        parse_request(body | {"bogus": 1}, "changepoint")


def test_method_extension_selects_the_detector() -> None:
    body = {"series": [{"timestamp": f"2024-01-{d:02d}T00:00:00Z", "value": d % 7} for d in range(1, 29)]}
    values, ts, kw = parse_request(body | {"granularity": "daily", "method": "auto"})
    assert kw["method"] == "auto"
    auto = ad.detect_entire(values, ts, **kw)
    assert auto.to_dict() == ad.detect_entire(values, ts, granularity="daily", method="auto").to_dict()
    values, ts, kw = parse_request(body | {"method": "magic"})
    with pytest.raises(BadArgument, match="'method'"):
        ad.detect_entire(values, ts, **kw)
