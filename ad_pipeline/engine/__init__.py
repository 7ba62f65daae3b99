"""The detection engine: pure numpy (+ scipy/statsmodels/numba), arrays in, results out.

It never imports pandas, polars, duckdb, pyarrow or airflow.
"""

from .api import detect_change_points, detect_entire, detect_last
from .batch import detect_change_points_batch, detect_entire_batch, detect_last_batch
from .result import (
    ChangePointBatchResult,
    ChangePointResult,
    EntireBatchResult,
    EntireResult,
    LastBatchResult,
    LastResult,
)

__all__ = [
    "detect_entire",
    "detect_last",
    "detect_change_points",
    "detect_entire_batch",
    "detect_last_batch",
    "detect_change_points_batch",
    "EntireResult",
    "LastResult",
    "ChangePointResult",
    "EntireBatchResult",
    "LastBatchResult",
    "ChangePointBatchResult",
]
