"""What a detection model receives and returns.

The batch driver (:mod:`ad_pipeline.engine.batch`) validates the input, places every series on
its grid and hands a *list* of :class:`GridSeries` to a model, so a model may batch work across
series (one compiled call for all STL decompositions, say). A model returns one output per series,
aligned with that series' grid, or the :class:`~ad_pipeline.errors.AnomalyDetectorError` that
series raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from ..errors import AnomalyDetectorError
from .params import ChangePointParams, SeriesParams
from .result import BoolArray, FloatArray

P = TypeVar("P", SeriesParams, ChangePointParams)

#: the window of last detection without a period, by granularity (the service's table; others: 28)
WINDOW_DEFAULT = {
    "daily": 28,
    "hourly": 168,
    "minutely": 1440,
    "monthly": 12,
    "weekly": 12,
    "yearly": 12,
    "secondly": 1440,
}


def suggested_window(period: int, granularity: str) -> int:
    """The points last detection should see, every model's answer (the service's rule, recorded).

    ``4 * period + 1`` with a period, else the granularity's default window + 1.

    >>> suggested_window(7, "daily"), suggested_window(0, "daily"), suggested_window(0, "secondly")
    (29, 29, 1441)
    """
    if period > 0:
        return 4 * period + 1
    return WINDOW_DEFAULT.get(granularity, 28) + 1


@dataclass(frozen=True, eq=False)
class GridSeries(Generic[P]):
    """One validated series on its grid: ``values[k]`` is grid point ``k``; NaN = missing.

    ``granularity`` is resolved (``"none"`` when the series has no timestamps; then the grid is
    the point index and NaN values are the only missing points).
    """

    values: FloatArray
    granularity: str
    custom_interval: int
    params: P  # SeriesParams for detection, ChangePointParams for change points

    @property
    def missing(self) -> BoolArray:
        return np.isnan(self.values)


@dataclass(frozen=True, eq=False)
class EntireOutput:
    """Entire detection of one series, aligned with its grid (NaN/False where not modelled)."""

    period: int
    expected: FloatArray
    upper_margin: FloatArray
    lower_margin: FloatArray
    is_anomaly: BoolArray
    is_positive: BoolArray
    is_negative: BoolArray
    severity: FloatArray


@dataclass(frozen=True, eq=False)
class LastOutput:
    """The verdict on the last grid point of one series."""

    period: int
    suggested_window: int
    expected: float
    upper_margin: float
    lower_margin: float
    is_anomaly: bool
    is_positive: bool
    is_negative: bool
    severity: float


class Model(Protocol):
    """A detector: ``"azure"`` (the service's answers) or ``"auto"`` (the most accurate)."""

    def entire(self, batch: Sequence[GridSeries[SeriesParams]]) -> list[EntireOutput | AnomalyDetectorError]: ...

    def last(self, batch: Sequence[GridSeries[SeriesParams]]) -> list[LastOutput | AnomalyDetectorError]: ...
