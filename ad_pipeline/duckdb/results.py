"""Engine batch results as Arrow struct arrays (the UDFs' return values), and one engine call -> Arrow.

Fields as the DataFrame adapters' columns (:mod:`ad_pipeline.engine.result`'s column table) plus
``anomaly_error_code`` and ``anomaly_error``. NaN becomes NULL; results of an invalid series
(``errors="coerce"``) are NULL except the error fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine.batch import detect_change_points_batch, detect_entire_batch, detect_last_batch
from ..engine.result import columns_for
from .common import require_pyarrow

__all__ = ["entire_to_arrow", "last_to_arrow", "change_points_to_arrow", "detect_arrow", "KINDS"]

#: the struct fields of each job: its result columns, then the error columns
FIELDS: dict[str, list[str]] = {
    job: [c.name for c in columns_for(job, errors=True)] for job in ("entire", "last", "change_points")
}


def _float(pa: Any, x: NDArray[np.float64], null: NDArray[np.bool_] | None = None) -> Any:
    mask = np.isnan(x) if null is None else (np.isnan(x) | null)
    return pa.array(x, type=pa.float64(), mask=mask if mask.any() else None)


def _bool(pa: Any, x: NDArray[np.bool_], null: NDArray[np.bool_] | None) -> Any:
    return pa.array(x, type=pa.bool_(), mask=null if null is not None and null.any() else None)


def _int(pa: Any, x: NDArray[np.int64]) -> Any:
    mask = x < 0
    return pa.array(x.astype(np.int32), type=pa.int32(), mask=mask if mask.any() else None)


def _str(pa: Any, x: NDArray[np.object_]) -> Any:
    return pa.array(x, type=pa.string())


def _error_arrays(pa: Any, res: Any, repeat: NDArray[np.int64] | None) -> list[Any]:
    code, msg = res.error_code, res.error_message
    n = int(repeat.sum()) if repeat is not None else len(code)
    if all(c is None for c in code):
        return [pa.nulls(n, pa.string()), pa.nulls(n, pa.string())]
    if repeat is not None:
        code, msg = np.repeat(code, repeat), np.repeat(msg, repeat)
    return [_str(pa, code), _str(pa, msg)]


def entire_to_arrow(res: Any) -> Any:
    """An :class:`~ad_pipeline.EntireBatchResult` as a flat Arrow struct array aligned with the values.

    Fields as the DataFrame adapters' columns (``is_anomaly`` ... ``period``) plus
    ``anomaly_error_code`` and ``anomaly_error``. NaN becomes NULL; rows of an invalid series
    (``errors="coerce"``) are NULL except the error fields.

    Examples
    --------
    >>> import numpy as np, ad_pipeline as ad
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
    >>> s = entire_to_arrow(ad.detect_entire_batch(x, [0, 24], sensitivity=95))
    >>> s.field("is_anomaly").to_pylist()[9], s.type.num_fields
    (True, 12)
    """
    pa = require_pyarrow()
    lengths = np.diff(res.offsets)
    invalid = np.repeat(~res.valid, lengths) if not res.valid.all() else None
    return _struct(pa, res, "entire", invalid, lengths)


def _struct(pa: Any, res: Any, job: str, invalid: Any, lengths: Any) -> Any:
    """Result arrays as one Arrow struct array; per-series columns repeated over ``lengths`` when given."""
    arrays = []
    for c in columns_for(job):
        x = getattr(res, c.attribute_for(job))
        if c.per_series and lengths is not None:
            x = np.repeat(x, lengths)
        if c.kind == "int":
            arrays.append(_int(pa, x))
        elif c.kind == "bool":
            arrays.append(_bool(pa, x, invalid))
        else:
            arrays.append(_float(pa, x))
    arrays += _error_arrays(pa, res, lengths)
    return pa.StructArray.from_arrays(arrays, names=FIELDS[job])


def last_to_arrow(res: Any) -> Any:
    """A :class:`~ad_pipeline.LastBatchResult` as an Arrow struct array, one entry per series.

    Examples
    --------
    >>> import numpy as np, ad_pipeline as ad
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 8); x[-1] = 40.0
    >>> last_to_arrow(ad.detect_last_batch(x, [0, 32])).field("is_anomaly").to_pylist()
    [True]
    """
    pa = require_pyarrow()
    invalid = ~res.valid if not res.valid.all() else None
    return _struct(pa, res, "last", invalid, None)


def change_points_to_arrow(res: Any) -> Any:
    """A :class:`~ad_pipeline.ChangePointBatchResult` as a flat Arrow struct array aligned with the values.

    Examples
    --------
    >>> import numpy as np, ad_pipeline as ad
    >>> x = np.r_[np.zeros(100), np.full(100, 8.0)] + np.random.default_rng(1).normal(size=200)
    >>> s = change_points_to_arrow(ad.detect_change_points_batch(x, [0, 200]))
    >>> [i for i, v in enumerate(s.field("is_change_point").to_pylist()) if v]
    [100]
    """
    pa = require_pyarrow()
    lengths = np.diff(res.offsets)
    invalid = np.repeat(~res.valid, lengths) if not res.valid.all() else None
    return _struct(pa, res, "change_points", invalid, lengths)


# kind -> (engine batch function, batch result -> Arrow struct array, one result per point?)
KINDS: dict[str, tuple[Callable[..., Any], Callable[[Any], Any], bool]] = {
    "entire": (detect_entire_batch, entire_to_arrow, True),
    "last": (detect_last_batch, last_to_arrow, False),
    "change_points": (detect_change_points_batch, change_points_to_arrow, True),
}


def detect_arrow(kind: str, values: Any, offsets: Any, timestamps: Any = None, **kwargs: Any) -> Any:
    """One engine batch call of ``kind`` ("entire", "last", "change_points"), result as an Arrow struct array.

    ``kwargs`` go to the batch function (``errors``, ``keys``, parameters). The result is flat
    (aligned with ``values``) for "entire" and "change_points", one entry per series for "last".

    Examples
    --------
    >>> import numpy as np
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 6); x[9] = 30.0
    >>> detect_arrow("entire", x, [0, 24], sensitivity=95).field("is_anomaly").to_pylist()[9]
    True
    """
    batch, to_arrow, _ = KINDS[kind]
    return to_arrow(batch(values, offsets, timestamps, **kwargs))
