"""ad_pipeline: time-series anomaly detection where data already lives.

An Azure Anomaly Detector compatible engine (entire-series, last-point and change-point
detection) over numpy arrays, with adapters for pandas, polars, DuckDB and Airflow.

>>> import numpy as np
>>> import ad_pipeline as ad
>>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
>>> np.flatnonzero(ad.detect_entire(x, period=4, sensitivity=95).is_anomaly).tolist()
[9]
"""

from . import errors
from .engine import (
    ChangePointBatchResult,
    ChangePointResult,
    EntireBatchResult,
    EntireResult,
    LastBatchResult,
    LastResult,
    detect_change_points,
    detect_change_points_batch,
    detect_entire,
    detect_entire_batch,
    detect_last,
    detect_last_batch,
)
from .errors import AnomalyDetectorError
from .frames.register import install as _install_frame_adapters

_install_frame_adapters()  # df.anomaly once pandas/polars/dask.dataframe get imported (never imports them)

__version__ = "0.1.0"

__all__ = [
    "AnomalyDetectorError",
    "ChangePointBatchResult",
    "ChangePointResult",
    "EntireBatchResult",
    "EntireResult",
    "LastBatchResult",
    "LastResult",
    "detect_change_points",
    "detect_change_points_batch",
    "detect_entire",
    "detect_entire_batch",
    "detect_last",
    "detect_last_batch",
    "errors",
    "TabularDetector",
    "__version__",
]


def __getattr__(name: str):  # lazy: `import ad_pipeline` must not import scikit-learn/numba kernels
    if name in ("TabularDetector", "TabularExplanation"):
        from .engine.tabular import detector

        return getattr(detector, name)
    raise AttributeError(f"module 'ad_pipeline' has no attribute {name!r}")
