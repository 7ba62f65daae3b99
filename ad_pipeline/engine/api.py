"""Single-series detection: the batch API with one series.

>>> import numpy as np
>>> x = np.array([826, 799, 890, 900, 766, 805, 821, 20000, 883, 898, 957, 924, 881, 837, 784, 833])
>>> r = detect_entire(x, sensitivity=95)
>>> bool(r.is_anomaly[7]), bool(r.is_positive_anomaly[7])
(True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .batch import detect_change_points_batch, detect_entire_batch, detect_last_batch
from .params import forwards
from .result import ChangePointResult, EntireResult, LastResult


def _one(values: ArrayLike) -> tuple[np.ndarray, list[int]]:
    try:
        v = np.asarray(values, dtype=np.float64) if not isinstance(values, np.ndarray) else values
    except (TypeError, ValueError):  # the batch check names the offending value
        v = np.asarray(values, dtype=object)
    if v.ndim != 1:
        from ..errors import BadArgument

        raise BadArgument(f"The 'series' field must be one-dimensional, got an array of shape {v.shape}.")
    return v, [0, len(v)]


def _entire(values: ArrayLike, timestamps: ArrayLike | None, *, params: dict[str, Any]) -> EntireResult:
    v, offsets = _one(values)
    return detect_entire_batch(v, offsets, timestamps, **params).series(0)


def _last(
    values: ArrayLike, timestamps: ArrayLike | None, *, window: int | str | None, params: dict[str, Any]
) -> LastResult:
    v, offsets = _one(values)
    return detect_last_batch(v, offsets, timestamps, window=window, **params).series(0)


def _change_points(values: ArrayLike, timestamps: ArrayLike | None, *, params: dict[str, Any]) -> ChangePointResult:
    v, offsets = _one(values)
    return detect_change_points_batch(v, offsets, timestamps, **params).series(0)


@forwards("entire", _entire)
def detect_entire(
    values: ArrayLike,
    timestamps: ArrayLike | None = None,
    *,
    granularity: str | None = None,
    custom_interval: int | None = None,
    period: int | None = None,
    max_anomaly_ratio: float = 0.25,
    sensitivity: float = 99,
    impute_mode: str = "auto",
    impute_fixed_value: float | None = None,
    boundary_version: str = "V1",
    method: str = "azure",
) -> EntireResult:
    """Entire-series detection: one model over the whole series, every point judged.

    Parameters
    ----------
    values : array of float
        The series' values; NaN marks a missing point.
    timestamps : array of datetime64 or ISO-8601 strings, optional
        Aligned with ``values``; without them the points are a regular grid.

    The defaults are the service's, so a migrated request that omits a field gets Azure's answer.
    ``granularity=None`` infers it from ``timestamps`` (or ``"none"`` without them).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
    >>> r = detect_entire(x, period=4, sensitivity=95)
    >>> r.period, np.flatnonzero(r.is_anomaly).tolist()
    (4, [9])
    """
    raise NotImplementedError("@forwards calls _entire")


@forwards("last", _last)
def detect_last(
    values: ArrayLike,
    timestamps: ArrayLike | None = None,
    *,
    window: int | str | None = None,
    granularity: str | None = None,
    custom_interval: int | None = None,
    period: int | None = None,
    max_anomaly_ratio: float = 0.25,
    sensitivity: float = 99,
    impute_mode: str = "auto",
    impute_fixed_value: float | None = None,
    boundary_version: str = "V1",
    method: str = "azure",
) -> LastResult:
    """Last-point detection: is the newest point anomalous, judged against the given points.

    Parameters
    ----------
    values : array of float
        The series' values; NaN marks a missing point (the newest must have a value).
    timestamps : array of datetime64 or ISO-8601 strings, optional
        Aligned with ``values``; without them the points are a regular grid.
    window : None, "suggested" or int
        ``None``: judge against all given points; ``"suggested"``: against the last
        ``suggested_window`` points; an integer: against the last ``window`` points.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 8); x[-1] = 40.0
    >>> detect_last(x).is_anomaly
    True
    """
    raise NotImplementedError("@forwards calls _last")


@forwards("change_points", _change_points)
def detect_change_points(
    values: ArrayLike,
    timestamps: ArrayLike | None = None,
    *,
    granularity: str | None = None,
    custom_interval: int | None = None,
    period: int | None = None,
    stable_trend_window: int | None = None,
    threshold: float | None = None,
) -> ChangePointResult:
    """Change-point detection: where the trend of the series shifts.

    Parameters
    ----------
    values : array of float
        The series' values; NaN marks a missing point.
    timestamps : array of datetime64 or ISO-8601 strings, optional
        Aligned with ``values``; without them the points are a regular grid.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros(100), np.full(100, 8.0)] + np.random.default_rng(1).normal(size=200)
    >>> np.flatnonzero(detect_change_points(x).is_change_point).tolist()
    [100]
    """
    raise NotImplementedError("@forwards calls _change_points")


__all__: list[str] = ["detect_entire", "detect_last", "detect_change_points"]
