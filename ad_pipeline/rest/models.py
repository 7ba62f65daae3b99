"""The OpenAPI description of the REST bodies (pydantic models shown in ``/openapi.json``).

The models only *describe* the bodies: requests are read by :func:`ad_pipeline.rest.request.parse_request`
so that refusals carry the library's codes and messages, never pydantic's. The parameter fields come
from :mod:`ad_pipeline.engine.params`' table (Azure JSON name, JSON schema, doc), so the schema
accepts what the engine accepts (``sensitivity``: any number from 0 to 100).

>>> DetectRequest.model_json_schema()["properties"]["sensitivity"]["anyOf"][0]
{'maximum': 100, 'minimum': 0, 'type': 'number'}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..engine.params import PARAM_BY_NAME, Param, params_for
from .request import ABSENT

__all__ = [
    "TimeSeriesPoint",
    "ImputeStrategy",
    "DetectRequest",
    "ChangePointRequest",
    "EntireResponse",
    "LastResponse",
    "ChangePointResponse",
    "ErrorResponse",
    "Health",
    "REQUEST_MODELS",
    "RESPONSE_MODELS",
]

_JSON_TYPES: dict[str, type] = {"number": float, "integer": int, "string": str}
_BOUNDS = {"minimum": "ge", "maximum": "le", "exclusiveMinimum": "gt", "exclusiveMaximum": "lt"}


def _value_type(p: Param) -> Any:
    """The python type of one value of ``p`` from its JSON schema (an enum becomes a Literal)."""
    schema = p.json_schema
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]  # type: ignore[valid-type]
    return _JSON_TYPES[schema["type"]]


def _field(p: Param) -> tuple[Any, Any]:
    """``p`` as an optional request field: absent = the engine's default."""
    bounds = {_BOUNDS[k]: v for k, v in p.json_schema.items() if k in _BOUNDS}
    doc = ABSENT[p.name][1] if p.name in ABSENT else p.doc
    return _value_type(p) | None, Field(None, description=doc, **bounds)


def _param_fields(job: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {p.azure: _field(p) for p in params_for(job) if p.name not in skip}


def _example_series(n: int = 24) -> Any:  # JSON for the schema examples
    return [
        {"timestamp": f"2024-01-{d + 1:02d}T00:00:00Z", "value": [10.0, 12, 14, 12, 10, 8, 9][d % 7] + (d == 17) * 30}
        for d in range(n)
    ]


class TimeSeriesPoint(BaseModel):
    """One point of a series."""

    model_config = ConfigDict(extra="allow")
    timestamp: str | None = Field(
        None,
        description="ISO-8601 time of the point (e.g. 2024-01-01T00:00:00Z); give it on every point or on none.",
        json_schema_extra={"format": "date-time"},
    )
    value: float = Field(description="The measurement.")


class _RequestBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    series: list[TimeSeriesPoint] = Field(
        min_length=12, description="At least 12 points, sorted by timestamp, at most the server's limit (8,640)."
    )


class ImputeStrategy(BaseModel):
    """v1.0 spelling of imputeMode/imputeFixedValue."""

    imputeMode: _value_type(PARAM_BY_NAME["impute_mode"]) | None = None  # type: ignore[valid-type]
    imputeValue: float | None = None


_DetectFields: Any = create_model("_DetectFields", __base__=_RequestBase, **_param_fields("entire"))
_ChangePointFields: Any = create_model("_ChangePointFields", __base__=_RequestBase, **_param_fields("change_points"))


class DetectRequest(_DetectFields):
    """Request of entire and last detection (v1.1 fields; v1.0's imputeStrategy/fillUpMode also read)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"series": _example_series(), "granularity": "daily", "sensitivity": 95}]}
    )
    imputeStrategy: ImputeStrategy | None = Field(None, deprecated=True, description="v1.0 form of imputeMode.")
    fillUpMode: str | None = Field(None, deprecated=True, description="v1.0 form: last = previous, no = notFill.")
    fixedValue: float | None = Field(None, deprecated=True, description="v1.0 form of imputeFixedValue.")


class ChangePointRequest(_ChangePointFields):
    """Request of change-point detection."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"series": _example_series(), "granularity": "daily", "threshold": 0.9}]}
    )


class EntireResponse(BaseModel):
    """Entire detection: one entry per input point."""

    period: int
    expectedValues: list[float | None]
    upperMargins: list[float | None]
    lowerMargins: list[float | None]
    isAnomaly: list[bool]
    isNegativeAnomaly: list[bool]
    isPositiveAnomaly: list[bool]
    severity: list[float | None]


class LastResponse(BaseModel):
    """Last detection: the verdict on the newest point."""

    period: int
    suggestedWindow: int
    expectedValue: float | None
    upperMargin: float | None
    lowerMargin: float | None
    isAnomaly: bool
    isNegativeAnomaly: bool
    isPositiveAnomaly: bool
    severity: float | None


class ChangePointResponse(BaseModel):
    """Change-point detection: one entry per input point."""

    period: int
    isChangePoint: list[bool]
    confidenceScores: list[float | None]


class ErrorResponse(BaseModel):
    """Every refusal: an Azure error code and a message naming the field."""

    code: str
    message: str


class Health(BaseModel):
    status: str
    version: str


REQUEST_MODELS: dict[str, type[BaseModel]] = {
    "entire": DetectRequest,
    "last": DetectRequest,
    "changepoint": ChangePointRequest,
}
RESPONSE_MODELS: dict[str, type[BaseModel]] = {
    "entire": EntireResponse,
    "last": LastResponse,
    "changepoint": ChangePointResponse,
}
