"""The error hierarchy of ad_pipeline.

Every refusal is an :class:`AnomalyDetectorError` carrying an Azure-style ``code`` and a
``message`` that names the field, what was expected and what came. Each subclass is also a
``ValueError``, so ``except ValueError`` keeps working.

>>> from ad_pipeline.errors import InvalidModelArgument
>>> err = InvalidModelArgument("The 'sensitivity' field must be a number between 0 and 100, got 120.")
>>> err.to_dict()["code"]
'InvalidModelArgument'
>>> isinstance(err, ValueError)
True
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AnomalyDetectorError",
    "BadArgument",
    "InvalidSeries",
    "InvalidGranularity",
    "InvalidCustomInterval",
    "InvalidPeriod",
    "InvalidModelArgument",
    "InvalidImputeMode",
    "InvalidImputeFixedValue",
    "InvalidBoundaryVersion",
    "InvalidModelFile",
    "MissingDependency",
    "error_from_code",
]


class AnomalyDetectorError(ValueError):
    """Base of every ad_pipeline refusal: ``.code`` (Azure-style) and ``.message``."""

    code: ClassVar[str] = "BadArgument"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """The Azure error body: ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}

    def __reduce__(self):  # keep code/message through pickling (multiprocessing, Airflow XCom)
        return (type(self), (self.message,))


class BadArgument(AnomalyDetectorError):
    """A required field is missing or has the wrong type."""

    code = "BadArgument"


class InvalidSeries(AnomalyDetectorError):
    """The series is too short, unsorted, has duplicated timestamps or off-grid points."""

    code = "InvalidSeries"


class InvalidGranularity(AnomalyDetectorError):
    """Unknown granularity, or timestamps that fit no grid."""

    code = "InvalidGranularity"


class InvalidCustomInterval(AnomalyDetectorError):
    """``custom_interval`` is not a positive integer."""

    code = "InvalidCustomInterval"


class InvalidPeriod(AnomalyDetectorError):
    """``period`` is not a non-negative integer."""

    code = "InvalidPeriod"


class InvalidModelArgument(AnomalyDetectorError):
    """A model parameter (one of ``engine/params.py``'s table) is out of range."""

    code = "InvalidModelArgument"


class InvalidImputeMode(AnomalyDetectorError):
    """Unknown ``impute_mode``."""

    code = "InvalidImputeMode"


class InvalidImputeFixedValue(AnomalyDetectorError):
    """``impute_mode="fixed"`` without a finite ``impute_fixed_value``."""

    code = "InvalidImputeFixedValue"


class InvalidBoundaryVersion(AnomalyDetectorError):
    """Unknown ``boundary_version``."""

    code = "InvalidBoundaryVersion"


class InvalidModelFile(AnomalyDetectorError):
    """A saved model file is foreign, tampered with, or from an incompatible version."""

    code = "InvalidModelFile"


#: The name of this project on PyPI (``pip install 'ad-pipeline-anomaly[duckdb]'``); the import name
#: stays ``ad_pipeline``. (``ad-pipeline`` on PyPI is an unrelated project.)
DISTRIBUTION = "ad-pipeline-anomaly"


def pip_install(extra: str) -> str:
    """The command installing ``extra`` of this project: ``pip install 'ad-pipeline-anomaly[duckdb]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


class MissingDependency(AnomalyDetectorError, ImportError):
    """An optional integration is used without its extra installed."""

    code = "MissingDependency"

    @classmethod
    def for_extra(cls, package: str, extra: str) -> MissingDependency:
        return cls(
            f"This feature needs the {package!r} package, which is not installed; "
            f"install it with: {pip_install(extra)}"
        )


_BY_CODE: dict[str, type[AnomalyDetectorError]] = {
    c.code: c
    for c in (
        BadArgument,
        InvalidSeries,
        InvalidGranularity,
        InvalidCustomInterval,
        InvalidPeriod,
        InvalidModelArgument,
        InvalidImputeMode,
        InvalidImputeFixedValue,
        InvalidBoundaryVersion,
        InvalidModelFile,
        MissingDependency,
    )
}


def error_from_code(code: str, message: str) -> AnomalyDetectorError:
    """Rebuild the error of ``code`` (as found in a result's ``error_code``) with ``message``.

    >>> error_from_code("InvalidSeries", "too short").code
    'InvalidSeries'
    """
    return _BY_CODE.get(code, AnomalyDetectorError)(message)
