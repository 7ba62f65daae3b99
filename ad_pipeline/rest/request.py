"""An Azure request body (camelCase JSON) as our values, timestamps and keyword parameters.

One mapping for every consumer (the golden replay, the REST service). Values are not checked
here: the engine's parameter checks (:mod:`ad_pipeline.engine.params`) do that in one place.

>>> body = {"series": [{"timestamp": "2024-01-01T00:00:00Z", "value": 1.0}], "granularity": "daily",
...         "imputeStrategy": {"imputeMode": "fixed", "imputeValue": 0}}
>>> values, ts, kw = parse_request(body)
>>> kw["impute_mode"], kw["impute_fixed_value"]
('fixed', 0)
>>> parse_request({"series": body["series"]})[2]["granularity"]
'none'
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine.params import GRANULARITIES, params_for
from ..errors import BadArgument

# camelCase request field -> engine parameter, from engine/params.py's table ("method" is
# ad_pipeline's extension: "auto" for the most accurate detector)
_FIELDS = {p.azure: p.name for p in params_for("entire")}
_CHANGE_POINT_FIELDS = {p.azure: p.name for p in params_for("change_points")}
# accepted and ignored: response-shaping flags of the service and the fixed test level
_IGNORED = {"needDetectorId", "needFillUpConfirm", "needSpectrumPeriod", "alpha", "series"}
_LEGACY = {"imputeStrategy", "fillUpMode", "fixedValue"}
_FILL_UP = {"last": "previous", "no": "notFill", "notfill": "notFill"}


def _check_scalar(field: str, value: Any) -> None:
    """A parameter is one JSON scalar: ``"sensitivity": [95]`` is refused, not read as 95 (the
    engine takes lists as one value per series)."""
    if isinstance(value, (list, dict)):
        raise BadArgument(
            f"The {field!r} field must be a single number or string, got a JSON {'array' if isinstance(value, list) else 'object'}: {value!r:.60}."
        )


#: the omitted fields whose meaning differs from the engine's default: (the value they take, how the
#: OpenAPI schema describes them). The service laid no grid when granularity was omitted.
ABSENT: dict[str, tuple[Any, str]] = {
    "granularity": (
        "none",
        f"The grid of the timestamps: one of {', '.join(GRANULARITIES)}. Absent: 'none', as the service "
        "(the timestamps only order the points).",
    ),
}


def parse_request(
    body: dict[str, Any], kind: str = "detect"
) -> tuple[NDArray[np.float64], list[str] | None, dict[str, Any]]:
    """``(values, timestamps, kwargs)`` of a request; a field that is ``null`` counts as omitted.

    ``kind="detect"`` (entire and last detect): granularity ``none`` (the timestamps then only
    order the points) when omitted, as the service (the other omitted fields take the engine's
    defaults, which are the service's); legacy forms are
    mapped: ``imputeStrategy: {imputeMode, imputeValue}`` and ``fillUpMode`` (``last`` =
    previous, ``no`` = notFill) with ``fixedValue``. ``kind="changepoint"``: the grid fields plus
    ``stableTrendWindow`` and ``threshold``; detect-only fields are ignored, as the service did.
    """
    if not isinstance(body, dict):
        raise BadArgument(f"The request body must be a JSON object, got {type(body).__name__}.")
    series = body.get("series")
    if series is None:
        raise BadArgument("The 'series' field is required in request.")
    if not isinstance(series, list):
        raise BadArgument(f"The 'series' field must be a list of points, got {type(series).__name__}.")
    fields = _CHANGE_POINT_FIELDS if kind == "changepoint" else _FIELDS
    unknown = set(body) - set(fields) - set(_FIELDS) - _IGNORED - _LEGACY
    if unknown:
        raise BadArgument(f"Unknown request field(s) {sorted(unknown)}; expected some of {sorted(fields)}.")
    body = {k: v for k, v in body.items() if v is not None}
    values = np.empty(len(series), dtype=np.float64)
    stamps: list[str] = []
    for i, point in enumerate(series):
        if not isinstance(point, dict):
            raise BadArgument(
                f"The 'series' field must hold objects with a value, got {point!r:.60} at index {i}."
            )
        v = point.get("value")
        if isinstance(v, bool) or (v is not None and not isinstance(v, (int, float))):
            raise BadArgument(f"The 'series' field values must be numbers, got {v!r:.60} at index {i}.")
        values[i] = np.nan if v is None else float(v)
        if "timestamp" in point:
            if not isinstance(point["timestamp"], str):  # numbers/lists would reach numpy unchecked
                raise BadArgument(
                    f"The 'series' field timestamps must be ISO-8601 strings, got {point['timestamp']!r:.60} at index {i}."
                )
            stamps.append(point["timestamp"])
    if stamps and len(stamps) != len(series):
        raise BadArgument("The 'series' field must give a timestamp for every point or for none.")
    for key in (*fields, "fillUpMode", "fixedValue"):
        _check_scalar(key, body.get(key))
    kwargs: dict[str, Any] = {name: body[key] for key, name in fields.items() if key in body}
    if kind == "changepoint":
        return values, (stamps or None), kwargs
    strategy = body.get("imputeStrategy")
    if isinstance(strategy, dict):
        for key in ("imputeMode", "imputeValue"):
            _check_scalar(f"imputeStrategy.{key}", strategy.get(key))
        if "imputeMode" in strategy and "impute_mode" not in kwargs:
            kwargs["impute_mode"] = strategy["imputeMode"]
        if "imputeValue" in strategy and "impute_fixed_value" not in kwargs:
            kwargs["impute_fixed_value"] = strategy["imputeValue"]
    elif strategy is not None:
        raise BadArgument(f"The 'imputeStrategy' field must be an object, got {strategy!r:.60}.")
    if "fillUpMode" in body and "impute_mode" not in kwargs:
        mode = body["fillUpMode"]
        kwargs["impute_mode"] = _FILL_UP.get(mode.lower(), mode) if isinstance(mode, str) else mode
    if "fixedValue" in body and "impute_fixed_value" not in kwargs:
        kwargs["impute_fixed_value"] = body["fixedValue"]
    for name, (value, _) in ABSENT.items():
        kwargs.setdefault(name, value)
    return values, (stamps or None), kwargs
