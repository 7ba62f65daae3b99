"""Result objects: arrays in, arrays out; ``to_dict()`` gives Azure's JSON body (camelCase)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..errors import error_from_code

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


# --------------------------------------------------------------------------- the result-column table

Kind = Literal["bool", "float", "int", "str"]


@dataclass(frozen=True)
class ResultColumn:
    """One result column, as every door names it.

    ``name`` is the column of a frame, a SQL struct or a warehouse table. ``attribute`` is the
    attribute of the entire and change-point results (arrays per point, plural as Azure's body);
    a last-point result names it ``name`` (one value per series) unless ``last_attribute`` says otherwise. ``kind`` is the value type
    (``bool``, ``float``, ``int``, ``str``; adapters map it to their own types). ``azure`` says
    whether Azure's response body carries it: its JSON name is the camelCase of the job's
    attribute (:meth:`azure_name`). ``per_series`` marks one value per series in every job.
    """

    name: str
    attribute: str
    kind: Kind
    jobs: frozenset[str]
    azure: bool = True
    per_series: bool = False
    last_attribute: str | None = None

    def attribute_for(self, job: str) -> str:
        """The attribute of ``job``'s batch result that holds this column."""
        if job == "last":
            return self.last_attribute or self.name
        return self.attribute

    def azure_name(self, job: str) -> str | None:
        """The field of Azure's response body of ``job`` (None if Azure has none).

        >>> COLUMN_BY_NAME["expected_value"].azure_name("entire"), COLUMN_BY_NAME["expected_value"].azure_name("last")
        ('expectedValues', 'expectedValue')
        """
        if not self.azure:
            return None
        head, *rest = self.attribute_for(job).split("_")
        return head + "".join(w.title() for w in rest)


_DETECT = frozenset({"entire", "last"})
RESULT_COLUMNS: tuple[ResultColumn, ...] = (
    ResultColumn("is_anomaly", "is_anomaly", "bool", _DETECT),
    ResultColumn("is_positive_anomaly", "is_positive_anomaly", "bool", _DETECT),
    ResultColumn("is_negative_anomaly", "is_negative_anomaly", "bool", _DETECT),
    ResultColumn("expected_value", "expected_values", "float", _DETECT),
    ResultColumn("lower_boundary", "lower_boundaries", "float", _DETECT, azure=False),
    ResultColumn("upper_boundary", "upper_boundaries", "float", _DETECT, azure=False),
    ResultColumn("lower_margin", "lower_margins", "float", _DETECT),
    ResultColumn("upper_margin", "upper_margins", "float", _DETECT),
    ResultColumn("severity", "severity", "float", _DETECT),
    ResultColumn("period", "period", "int", _DETECT, per_series=True),
    ResultColumn("suggested_window", "suggested_window", "int", frozenset({"last"}), per_series=True),
    ResultColumn("is_change_point", "is_change_point", "bool", frozenset({"change_points"})),
    ResultColumn("change_point_confidence", "confidence_scores", "float", frozenset({"change_points"})),
)
#: with ``errors="coerce"``, the error of an invalid series (``error_code`` / ``error_message`` of a batch result)
ERROR_COLUMNS: tuple[ResultColumn, ...] = (
    ResultColumn("anomaly_error_code", "error_code", "str", frozenset({"entire", "last", "change_points"}),
                 azure=False, per_series=True, last_attribute="error_code"),
    ResultColumn("anomaly_error", "error_message", "str", frozenset({"entire", "last", "change_points"}),
                 azure=False, per_series=True, last_attribute="error_message"),
)  # fmt: skip
COLUMN_BY_NAME: dict[str, ResultColumn] = {c.name: c for c in (*RESULT_COLUMNS, *ERROR_COLUMNS)}


def columns_for(job: str, *, errors: bool = False) -> tuple[ResultColumn, ...]:
    """The result columns of ``job`` ("entire", "last" or "change_points"), in table order.

    ``errors=True`` appends the two error columns.

    >>> [c.name for c in columns_for("change_points", errors=True)]
    ['is_change_point', 'change_point_confidence', 'anomaly_error_code', 'anomaly_error']
    >>> {c.name: c.attribute_for("entire") for c in columns_for("entire")}["upper_margin"]
    'upper_margins'
    """
    if job not in ("entire", "last", "change_points"):
        raise ValueError(f"job must be one of entire, last, change_points, got {job!r}")
    return tuple(c for c in RESULT_COLUMNS if job in c.jobs) + (ERROR_COLUMNS if errors else ())


def column_attributes(job: str) -> dict[str, str]:
    """``{column: attribute of the job's batch result}`` (the old ``ENTIRE_COLUMNS``-style mapping)."""
    return {c.name: c.attribute_for(job) for c in columns_for(job)}


def column_kinds() -> dict[str, Kind]:
    """``{column: kind}`` of every result and error column."""
    return {name: c.kind for name, c in COLUMN_BY_NAME.items()}


def _json_float(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _json_floats(a: FloatArray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in a.tolist()]


@dataclass(frozen=True, eq=False)
class EntireResult:
    """Entire-series detection of one series; every array is aligned with the input points."""

    period: int
    expected_values: FloatArray
    upper_margins: FloatArray
    lower_margins: FloatArray
    upper_boundaries: FloatArray
    lower_boundaries: FloatArray
    is_anomaly: BoolArray
    is_positive_anomaly: BoolArray
    is_negative_anomaly: BoolArray
    severity: FloatArray

    def __len__(self) -> int:
        return len(self.expected_values)

    def to_dict(self) -> dict[str, Any]:
        """Azure's entire-detect response body."""
        return {
            "period": int(self.period),
            "expectedValues": _json_floats(self.expected_values),
            "upperMargins": _json_floats(self.upper_margins),
            "lowerMargins": _json_floats(self.lower_margins),
            "isAnomaly": self.is_anomaly.tolist(),
            "isNegativeAnomaly": self.is_negative_anomaly.tolist(),
            "isPositiveAnomaly": self.is_positive_anomaly.tolist(),
            "severity": _json_floats(self.severity),
        }


@dataclass(frozen=True, eq=False)
class LastResult:
    """Last-point detection: the verdict on the newest point of one series."""

    period: int
    suggested_window: int
    expected_value: float
    upper_margin: float
    lower_margin: float
    upper_boundary: float
    lower_boundary: float
    is_anomaly: bool
    is_positive_anomaly: bool
    is_negative_anomaly: bool
    severity: float

    def to_dict(self) -> dict[str, Any]:
        """Azure's last-detect response body."""
        return {
            "period": int(self.period),
            "suggestedWindow": int(self.suggested_window),
            "expectedValue": _json_float(self.expected_value),
            "upperMargin": _json_float(self.upper_margin),
            "lowerMargin": _json_float(self.lower_margin),
            "isAnomaly": bool(self.is_anomaly),
            "isNegativeAnomaly": bool(self.is_negative_anomaly),
            "isPositiveAnomaly": bool(self.is_positive_anomaly),
            "severity": _json_float(self.severity),
        }


@dataclass(frozen=True, eq=False)
class ChangePointResult:
    """Change-point detection of one series, aligned with the input points."""

    period: int
    is_change_point: BoolArray
    confidence_scores: FloatArray

    def to_dict(self) -> dict[str, Any]:
        """Azure's change-point response body."""
        return {
            "period": int(self.period),
            "isChangePoint": self.is_change_point.tolist(),
            "confidenceScores": _json_floats(self.confidence_scores),
        }


class _BatchBase:
    """Per-series bookkeeping shared by the batch results."""

    offsets: IntArray
    period: IntArray
    error_code: NDArray[np.object_]
    error_message: NDArray[np.object_]

    @property
    def n_series(self) -> int:
        return len(self.offsets) - 1

    @property
    def valid(self) -> BoolArray:
        """True for series that were detected (False where ``errors="coerce"`` recorded an error)."""
        return np.array([c is None for c in self.error_code], dtype=bool)

    def raise_for_series(self, i: int) -> None:
        """Raise the recorded error of series ``i``, if any."""
        if self.error_code[i] is not None:
            raise error_from_code(self.error_code[i], self.error_message[i])


@dataclass(frozen=True, eq=False)
class EntireBatchResult(_BatchBase):
    """Entire detection of many series: flat arrays aligned with ``values`` plus per-series arrays.

    Series *i* occupies ``[offsets[i], offsets[i+1])`` of every flat array. Invalid series (with
    ``errors="coerce"``) have NaN floats, False flags, period -1 and an ``error_code``.
    """

    offsets: IntArray
    period: IntArray
    expected_values: FloatArray
    upper_margins: FloatArray
    lower_margins: FloatArray
    upper_boundaries: FloatArray
    lower_boundaries: FloatArray
    is_anomaly: BoolArray
    is_positive_anomaly: BoolArray
    is_negative_anomaly: BoolArray
    severity: FloatArray
    error_code: NDArray[np.object_]
    error_message: NDArray[np.object_]

    def series(self, i: int) -> EntireResult:
        """The :class:`EntireResult` of series ``i`` (raises its error if it was invalid)."""
        self.raise_for_series(i)
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        flat = {f.name: getattr(self, f.name)[a:b] for f in fields(EntireResult) if f.name != "period"}
        return EntireResult(period=int(self.period[i]), **flat)


@dataclass(frozen=True, eq=False)
class LastBatchResult(_BatchBase):
    """Last-point detection of many series: one entry per series."""

    offsets: IntArray
    period: IntArray
    suggested_window: IntArray
    expected_value: FloatArray
    upper_margin: FloatArray
    lower_margin: FloatArray
    upper_boundary: FloatArray
    lower_boundary: FloatArray
    is_anomaly: BoolArray
    is_positive_anomaly: BoolArray
    is_negative_anomaly: BoolArray
    severity: FloatArray
    error_code: NDArray[np.object_]
    error_message: NDArray[np.object_]

    def series(self, i: int) -> LastResult:
        """The :class:`LastResult` of series ``i`` (raises its error if it was invalid)."""
        self.raise_for_series(i)
        kw = {f.name: getattr(self, f.name)[i].item() for f in fields(LastResult)}
        return LastResult(**kw)


@dataclass(frozen=True, eq=False)
class ChangePointBatchResult(_BatchBase):
    """Change-point detection of many series: flat arrays aligned with ``values``."""

    offsets: IntArray
    period: IntArray
    is_change_point: BoolArray
    confidence_scores: FloatArray
    error_code: NDArray[np.object_]
    error_message: NDArray[np.object_]

    def series(self, i: int) -> ChangePointResult:
        """The :class:`ChangePointResult` of series ``i`` (raises its error if it was invalid)."""
        self.raise_for_series(i)
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return ChangePointResult(
            period=int(self.period[i]),
            is_change_point=self.is_change_point[a:b],
            confidence_scores=self.confidence_scores[a:b],
        )
