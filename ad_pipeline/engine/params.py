"""Model parameters: declared once, checked in one place, one message shape.

Every public entry point calls :func:`check_params` before computing. A message names the
field, what was expected and what came::

    The 'sensitivity' field must be a number between 0 and 100, got 120.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import (
    BadArgument,
    InvalidBoundaryVersion,
    InvalidCustomInterval,
    InvalidGranularity,
    InvalidImputeFixedValue,
    InvalidImputeMode,
    InvalidModelArgument,
    InvalidPeriod,
)
from .granularity import max_custom_interval, step_too_long

GRANULARITIES = (
    "yearly",
    "monthly",
    "weekly",
    "daily",
    "hourly",
    "minutely",
    "secondly",
    "microsecond",
    "none",
)
IMPUTE_MODES = ("auto", "previous", "linear", "fixed", "zero", "notFill")
BOUNDARY_VERSIONS = ("V1", "V2", "V3")
METHODS = ("azure", "auto")

_IMPUTE_ALIASES = {m.lower(): m for m in IMPUTE_MODES} | {"notfill": "notFill", "last": "previous", "no": "notFill"}


@dataclass(frozen=True)
class SeriesParams:
    """The checked parameters of one series (what the numeric core receives)."""

    granularity: str | None = None  # None: infer from timestamps (or "none" without them)
    custom_interval: int = 1
    period: int | None = None  # None: detect; 0: no seasonality
    max_anomaly_ratio: float = 0.25
    sensitivity: float = 99.0
    impute_mode: str = "auto"
    impute_fixed_value: float | None = None
    boundary_version: str = "V1"
    method: str = "azure"


@dataclass(frozen=True)
class ChangePointParams:
    granularity: str | None = None
    custom_interval: int = 1
    period: int | None = None
    stable_trend_window: int | None = None
    threshold: float | None = None


def _is_int_like(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, numbers.Integral):
        return True
    return isinstance(v, numbers.Real) and math.isfinite(float(v)) and float(v).is_integer()


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def check_granularity(value: Any) -> str | None:
    """``None`` stays ``None`` (infer); names are case-insensitive."""
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in GRANULARITIES:
        return value.lower()
    raise InvalidGranularity(
        f"The 'granularity' field must be one of {', '.join(GRANULARITIES)}, got {value!r}."
    )


def check_custom_interval(value: Any, granularity: str | None = None) -> int:
    """A positive integer; the grid step it makes with ``granularity`` is at most 292 years.

    >>> check_custom_interval(2_562_048, "hourly")
    Traceback (most recent call last):
    ...
    ad_pipeline.errors.InvalidCustomInterval: The 'custom_interval' field must be a positive integer of at most 2562047 with granularity 'hourly' (a grid step of at most 292 years), got 2562048.
    """
    if value is None:
        return 1
    if _is_int_like(value) and int(value) > 0:
        if int(value) <= max_custom_interval(granularity):
            return int(value)
        raise step_too_long(granularity, value)
    raise InvalidCustomInterval(f"The 'custom_interval' field must be a positive integer, got {value!r}.")


def check_period(value: Any) -> int | None:
    if value is None:
        return None
    if _is_int_like(value) and int(value) >= 0:
        return int(value)
    raise InvalidPeriod(f"The 'period' field must be a non-negative integer, got {value!r}.")


def check_max_anomaly_ratio(value: Any) -> float:
    if _is_real(value) and 0 < float(value) < 0.5:
        return float(value)
    raise InvalidModelArgument(
        f"The 'max_anomaly_ratio' field must be a number greater than 0 and less than 0.5, got {value!r}."
    )


def check_sensitivity(value: Any) -> float:
    if _is_real(value) and 0 <= float(value) <= 100:
        return float(value)
    raise InvalidModelArgument(f"The 'sensitivity' field must be a number between 0 and 100, got {value!r}.")


def check_impute_mode(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, str) and value.lower() in _IMPUTE_ALIASES:
        return _IMPUTE_ALIASES[value.lower()]
    raise InvalidImputeMode(f"The 'impute_mode' field must be one of {', '.join(IMPUTE_MODES)}, got {value!r}.")


def check_impute_fixed_value(mode: str, value: Any) -> float | None:
    if mode != "fixed":
        return None if value is None or not _is_real(value) else float(value)
    if _is_real(value) and abs(float(value)) <= 1e100:
        return float(value)
    raise InvalidImputeFixedValue(
        f"The 'impute_fixed_value' field must be a finite number when 'impute_mode' is 'fixed', got {value!r}."
    )


def check_boundary_version(value: Any) -> str:
    if value is None:
        return "V1"
    if isinstance(value, str) and value.upper() in BOUNDARY_VERSIONS:
        return value.upper()
    raise InvalidBoundaryVersion(
        f"The 'boundary_version' field must be one of {', '.join(BOUNDARY_VERSIONS)}, got {value!r}."
    )


def check_method(value: Any) -> str:
    if value is None:
        return "azure"
    if isinstance(value, str) and value.lower() in METHODS:
        return value.lower()
    raise BadArgument(f"The 'method' field must be one of {', '.join(METHODS)}, got {value!r}.")


def check_stable_trend_window(value: Any) -> int | None:
    if value is None:
        return None
    if _is_int_like(value) and int(value) >= 3:
        return int(value)
    raise InvalidModelArgument(
        f"The 'stable_trend_window' field must be an integer of at least 3, got {value!r}."
    )


def check_threshold(value: Any) -> float | None:
    if value is None:
        return None
    if _is_real(value) and 0 < float(value) < 1:
        return float(value)
    raise InvalidModelArgument(f"The 'threshold' field must be a number between 0 and 1 (exclusive), got {value!r}.")


def check_params(
    *,
    granularity: Any = None,
    custom_interval: Any = None,
    period: Any = None,
    max_anomaly_ratio: Any = 0.25,
    sensitivity: Any = 99,
    impute_mode: Any = "auto",
    impute_fixed_value: Any = None,
    boundary_version: Any = "V1",
    method: Any = "azure",
) -> SeriesParams:
    """Check the detect parameters of one series; raise the first violation.

    >>> check_params(sensitivity=95.0).sensitivity
    95.0
    >>> check_params(sensitivity=120)
    Traceback (most recent call last):
    ...
    ad_pipeline.errors.InvalidModelArgument: The 'sensitivity' field must be a number between 0 and 100, got 120.
    """
    mode = check_impute_mode(impute_mode)
    gran = check_granularity(granularity)
    return SeriesParams(
        granularity=gran,
        custom_interval=check_custom_interval(custom_interval, gran),
        period=check_period(period),
        max_anomaly_ratio=check_max_anomaly_ratio(max_anomaly_ratio),
        sensitivity=check_sensitivity(sensitivity),
        impute_mode=mode,
        impute_fixed_value=check_impute_fixed_value(mode, impute_fixed_value),
        boundary_version=check_boundary_version(boundary_version),
        method=check_method(method),
    )


def check_change_point_params(
    *,
    granularity: Any = None,
    custom_interval: Any = None,
    period: Any = None,
    stable_trend_window: Any = None,
    threshold: Any = None,
) -> ChangePointParams:
    """Check the change-point parameters of one series."""
    gran = check_granularity(granularity)
    return ChangePointParams(
        granularity=gran,
        custom_interval=check_custom_interval(custom_interval, gran),
        period=check_period(period),
        stable_trend_window=check_stable_trend_window(stable_trend_window),
        threshold=check_threshold(threshold),
    )


def is_per_series(value: Any) -> bool:
    """A parameter given per series: a list, tuple or 1-d array (strings are scalars)."""
    return isinstance(value, (list, tuple, np.ndarray)) and not isinstance(value, (str, bytes))


def _normalise_missing(value: Any) -> Any:
    """Per-series arrays from frames carry NaN/None/NA for 'not given'."""
    if value is None:
        return None
    try:
        if value is np.ma.masked:
            return None
        if isinstance(value, float) and math.isnan(value):
            return None
        if type(value).__name__ in ("NAType", "NaTType"):
            return None
    except Exception:  # pragma: no cover - exotic scalars
        return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def expand_params(n_series: int, checker: Any, params: dict[str, Any], defaults: dict[str, Any]) -> list[Any]:
    """Turn scalar-or-per-series parameters into one checked params object per series.

    Each distinct combination is checked once, so per-series arrays cost one check per
    unique value, not per series. A per-series array of the wrong length is a ``BadArgument``.
    The checker's error is raised for the first bad series; the caller decides (``errors=``)
    whether that stops the batch.
    """
    columns: dict[str, list[Any]] = {}
    for name, value in params.items():
        if is_per_series(value):
            seq = list(value)
            if len(seq) != n_series:
                raise BadArgument(
                    f"The {name!r} field must be a scalar or hold one value per series ({n_series}), got {len(seq)} values."
                )
            columns[name] = [_normalise_missing(v) for v in seq]
    scalars = {k: v for k, v in params.items() if k not in columns}
    if not columns:
        return [checker(**scalars)] * n_series
    out: list[Any] = []
    cache: dict[tuple, Any] = {}
    names = list(columns)
    for i in range(n_series):
        key = tuple(columns[name][i] for name in names)
        try:
            hit = cache.get(key)
        except TypeError:  # unhashable value: check it uncached
            hit = None
            key = None  # type: ignore[assignment]
        if hit is None:
            kwargs = dict(scalars)
            for name, v in zip(names, key if key is not None else [columns[n][i] for n in names], strict=True):
                kwargs[name] = defaults.get(name) if v is None else v
            try:
                hit = checker(**kwargs)
            except Exception as exc:  # noqa: BLE001 - re-raised per series by the caller
                hit = exc
            if key is not None:
                cache[key] = hit
        out.append(hit)
    return out
