"""Model parameters: declared once, checked in one place, one message shape.

:data:`PARAMS` is the one table of the model parameters (name, default, annotation, SQL type,
Azure JSON name, doc, jobs, JSON schema, check). Every door keeps an explicit signature and is
held against it: :func:`forwards` checks a signature at import time and hands the body the
parameters as one dict; ``tests/engine/test_param_table.py`` checks the doors it cannot decorate
(SQL macros, CLI flags, OpenAPI models). The batch checks every series with :func:`check_params`
(:func:`check_change_point_params`) before computing. A message names the field, what was
expected and what came::

    The 'sensitivity' field must be a number between 0 and 100, got 120.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

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


# --------------------------------------------------------------------------- the parameter table

JOBS = ("entire", "last", "change_points")
_DETECT = frozenset({"entire", "last"})
_ALL = frozenset(JOBS)
_CP = frozenset({"change_points"})


@dataclass(frozen=True)
class Param:
    """One model parameter, as every door spells it.

    The python, SQL and CLI name is ``name`` (the CLI flag is ``"--" + name.replace("_", "-")``);
    ``azure`` is the camelCase field of a REST request. ``default`` and ``annotation`` are what the
    public signatures show; ``json_schema`` is the OpenAPI fragment of one value; ``check`` turns a
    given value into the checked one, reading the parameters checked before it (table order).
    """

    name: str
    default: Any
    annotation: str
    sql_type: str
    azure: str
    doc: str
    jobs: frozenset[str]
    json_schema: Mapping[str, Any]
    check: Callable[[Any, Mapping[str, Any]], Any] = field(repr=False, compare=False)

    @property
    def flag(self) -> str:
        """The CLI flag, e.g. ``--max-anomaly-ratio``."""
        return "--" + self.name.replace("_", "-")

    @property
    def per_series_annotation(self) -> str:
        """The annotation of the batch functions, where a parameter may hold one value per series."""
        return f"{self.annotation} | ArrayLike"

    def doc_entry(self, *, per_series: bool = False) -> str:
        """The numpydoc entry of this parameter (name, type and default, then the one-line doc)."""
        ann = self.per_series_annotation if per_series else self.annotation
        return f"{self.name} : {ann}, default {self.default!r}\n    {self.doc}"


PARAMS: tuple[Param, ...] = (
    Param(
        "granularity", None, "str | None", "VARCHAR", "granularity",
        f"The grid of the timestamps: one of {', '.join(GRANULARITIES)}; None infers it from the timestamps "
        "(or 'none' without them).",
        _ALL, {"type": "string", "enum": list(GRANULARITIES)},
        lambda v, done: check_granularity(v),
    ),
    Param(
        "custom_interval", None, "int | None", "INTEGER", "customInterval",
        "The grid step in granularity units (e.g. 5 with minutely); None means 1.",
        _ALL, {"type": "integer", "minimum": 1},
        lambda v, done: check_custom_interval(v, done["granularity"]),
    ),
    Param(
        "period", None, "int | None", "INTEGER", "period",
        "The season length in points; None detects it, 0 means no seasonality.",
        _ALL, {"type": "integer", "minimum": 0},
        lambda v, done: check_period(v),
    ),
    Param(
        "max_anomaly_ratio", 0.25, "float", "DOUBLE", "maxAnomalyRatio",
        "The largest share of points that may be flagged, greater than 0 and less than 0.5.",
        _DETECT, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
        lambda v, done: check_max_anomaly_ratio(v),
    ),
    Param(
        "sensitivity", 99, "float", "DOUBLE", "sensitivity",
        "A number between 0 and 100: higher narrows the margins and flags more points.",
        _DETECT, {"type": "number", "minimum": 0, "maximum": 100},
        lambda v, done: check_sensitivity(v),
    ),
    Param(
        "impute_mode", "auto", "str", "VARCHAR", "imputeMode",
        f"How missing grid points are filled: one of {', '.join(IMPUTE_MODES)}.",
        _DETECT, {"type": "string", "enum": list(IMPUTE_MODES)},
        lambda v, done: check_impute_mode(v),
    ),
    Param(
        "impute_fixed_value", None, "float | None", "DOUBLE", "imputeFixedValue",
        "The fill value of impute_mode 'fixed'.",
        _DETECT, {"type": "number"},
        lambda v, done: check_impute_fixed_value(done["impute_mode"], v),
    ),
    Param(
        "boundary_version", "V1", "str", "VARCHAR", "boundaryVersion",
        f"How the margins are built: one of {', '.join(BOUNDARY_VERSIONS)}.",
        _DETECT, {"type": "string", "enum": list(BOUNDARY_VERSIONS)},
        lambda v, done: check_boundary_version(v),
    ),
    Param(
        "method", "azure", "str", "VARCHAR", "method",
        "The model: 'azure' (the service's answers) or 'auto' (the most accurate detector).",
        _DETECT, {"type": "string", "enum": list(METHODS)},
        lambda v, done: check_method(v),
    ),
    Param(
        "stable_trend_window", None, "int | None", "INTEGER", "stableTrendWindow",
        "The points on each side of a change point that must keep their trend (at least 3).",
        _CP, {"type": "integer", "minimum": 3},
        lambda v, done: check_stable_trend_window(v),
    ),
    Param(
        "threshold", None, "float | None", "DOUBLE", "threshold",
        "The confidence a change point needs, between 0 and 1 (exclusive).",
        _CP, {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        lambda v, done: check_threshold(v),
    ),
)  # fmt: skip
PARAM_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}


def params_for(job: str) -> tuple[Param, ...]:
    """The parameters of ``job`` ("entire", "last" or "change_points"), in table order.

    >>> [p.name for p in params_for("change_points")]
    ['granularity', 'custom_interval', 'period', 'stable_trend_window', 'threshold']
    """
    if job not in JOBS:
        raise ValueError(f"job must be one of {', '.join(JOBS)}, got {job!r}")
    return tuple(p for p in PARAMS if job in p.jobs)


def defaults_for(job: str) -> dict[str, Any]:
    """``{name: public default}`` of the parameters of ``job``."""
    return {p.name: p.default for p in params_for(job)}


def _check(job: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The checked values of ``job``'s parameters (omitted ones take the table default), in table order."""
    table = params_for(job)
    unknown = set(given) - {p.name for p in table}
    if unknown:
        raise TypeError(f"unexpected parameter(s) {sorted(unknown)}; expected some of {[p.name for p in table]}")
    done: dict[str, Any] = {}
    for p in table:
        done[p.name] = p.check(given.get(p.name, p.default), done)
    return done


def check_params(**given: Any) -> SeriesParams:
    """Check the detect parameters of one series (table order); raise the first violation.

    >>> check_params(sensitivity=95.0).sensitivity
    95.0
    >>> check_params(sensitivity=120)
    Traceback (most recent call last):
    ...
    ad_pipeline.errors.InvalidModelArgument: The 'sensitivity' field must be a number between 0 and 100, got 120.
    """
    return SeriesParams(**_check("entire", given))


def check_change_point_params(**given: Any) -> ChangePointParams:
    """Check the change-point parameters of one series (table order); raise the first violation."""
    return ChangePointParams(**_check("change_points", given))


# --------------------------------------------------------------------------- doors: explicit signatures

F = TypeVar("F", bound=Callable[..., Any])


def forwards(job: str, impl: Callable[..., Any], *, per_series: bool = False) -> Callable[[F], F]:
    """Make a public function (or method) with an explicit keyword signature forward to ``impl``.

    The decorated function is only its signature and docstring (its body raises
    ``NotImplementedError`` naming ``impl``, for the reader and the type checker): a call is bound to that signature
    and ``impl`` receives the other arguments as given plus ``params=``, a dict of ``job``'s table
    parameters (as given, defaults filled in, table order); an unknown keyword is a ``BadArgument``
    naming it and the table's names. At import time the signature must hold
    every parameter of ``job`` keyword-only, with the table's default and annotation (``per_series``:
    the batch annotation, ``<annotation> | ArrayLike``), else ``TypeError``. The docstring gets a
    numpydoc entry for each table parameter it does not document itself.

    >>> def _impl(x, *, scale, params):
    ...     return x * scale, params["threshold"]
    >>> @forwards("change_points", _impl)
    ... def door(x: float, *, scale: int = 2, granularity: str | None = None, custom_interval: int | None = None,
    ...          period: int | None = None, stable_trend_window: int | None = None,
    ...          threshold: float | None = None) -> tuple[float, float]:
    ...     '''A door.'''
    ...     raise NotImplementedError("@forwards calls _impl")
    >>> door(3, threshold=0.9)
    (6, 0.9)
    >>> @forwards("change_points", _impl)
    ... def bad(x: float, *, threshold: float | None = 0.5) -> None: ...
    Traceback (most recent call last):
    ...
    TypeError: bad: the signature must hold granularity (keyword-only, default None) as params.py's table
    """
    table = params_for(job)
    names = tuple(p.name for p in table)

    def wrap(fn: F) -> F:
        sig = inspect.signature(fn)
        check_signature(fn.__qualname__, sig, table, per_series)

        @functools.wraps(fn)
        def door(*args: Any, **kwargs: Any) -> Any:
            unknown = set(kwargs) - set(sig.parameters)
            if unknown:
                raise BadArgument(f"Unknown parameter(s) {sorted(unknown)}; expected some of {sorted(names)}.")
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            params = {n: bound.arguments.pop(n) for n in names}
            return impl(*bound.args, **bound.kwargs, params=params)

        door.__doc__ = with_param_docs(fn.__doc__ or "", table, per_series=per_series)
        return door  # type: ignore[return-value]

    return wrap


def check_signature(
    where: str, sig: inspect.Signature, table: tuple[Param, ...], per_series: bool
) -> None:
    """Raise ``TypeError`` unless ``sig`` holds every parameter of ``table`` keyword-only, with the
    table's default and annotation (``per_series``: the batch annotation). Used at import time by
    :func:`forwards` and by doors that forward on their own (the Airflow operators)."""
    for p in table:
        got = sig.parameters.get(p.name)
        ann = p.per_series_annotation if per_series else p.annotation
        if (
            got is None
            or got.kind is not inspect.Parameter.KEYWORD_ONLY
            or got.default != p.default
            or type(got.default) is not type(p.default)
        ):
            raise TypeError(
                f"{where}: the signature must hold {p.name} (keyword-only, default {p.default!r}) as params.py's table"
            )
        if got.annotation != ann:
            raise TypeError(f"{where}: {p.name} must be annotated {ann!r} as params.py's table, got {got.annotation!r}")


def with_param_docs(doc: str, table: Sequence[Param], *, per_series: bool = False) -> str:
    r"""``doc`` with a numpydoc entry for each parameter of ``table`` it does not document itself.

    The entries go at the end of the ``Parameters`` section (one is made before ``Returns`` or
    ``Examples``, or at the end, when there is none).

    >>> print(with_param_docs("Title.\n\nNotes\n-----\nA note.", params_for("change_points")[-1:]))
    Title.
    <BLANKLINE>
    Parameters
    ----------
    threshold : float | None, default None
        The confidence a change point needs, between 0 and 1 (exclusive).
    <BLANKLINE>
    Notes
    -----
    A note.
    """
    lines = doc.splitlines()
    indent = min((len(s) - len(s.lstrip()) for s in lines[1:] if s.strip()), default=0)
    pad = " " * indent
    documented = set(_documented(lines, pad))
    entries = [
        pad + line
        for p in table
        if p.name not in documented
        for line in p.doc_entry(per_series=per_series).splitlines()
    ]
    if not entries:
        return doc
    heads = [i for i, s in enumerate(lines[:-1]) if s.strip() and set(lines[i + 1].strip()) == {"-"}]
    head_names = {lines[i].strip(): i for i in heads}
    if "Parameters" in head_names:
        start = head_names["Parameters"]
        later = [i for i in heads if i > start]
        at = later[0] if later else len(lines)
        while at > start and not lines[at - 1].strip():
            at -= 1
        return "\n".join(lines[:at] + entries + lines[at:]) + ("\n" if doc.endswith("\n") else "")
    section = [pad + "Parameters", pad + "----------", *entries, ""]
    before = min((head_names[h] for h in ("Returns", "Examples", "Notes") if h in head_names), default=None)
    if before is None:
        return doc.rstrip() + "\n\n" + "\n".join(section) + "\n"
    return "\n".join(lines[:before] + section + lines[before:]) + ("\n" if doc.endswith("\n") else "")


def _documented(lines: list[str], pad: str) -> list[str]:
    """The names documented by the numpydoc entries of ``lines`` (``a, b : type`` counts both)."""
    out: list[str] = []
    for s in lines:
        if s.startswith(pad) and not s.startswith(pad + " ") and s.strip() and not s.strip().startswith(">>>"):
            head = s.strip().split(" : ")[0]
            out.extend(n.strip() for n in head.split(","))
    return out


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
