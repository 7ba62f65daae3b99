"""Dask adapter: ``ddf.anomaly.detect(...)``, ``.detect_last``, ``.change_points`` on a Dask DataFrame.

Registered when ``ad_pipeline`` is imported and ``dask.dataframe`` is (or later gets) imported.
The rows are shuffled by key (``ddf.shuffle(on=by)``: every series in one partition) and each
partition goes through the pandas accessor: its conversion and ONE engine batch call over all
the series of the partition. The result is a lazy Dask DataFrame with exactly the pandas
accessor's columns and dtypes; nothing runs before ``compute()``.

Memory per task is bounded by the partition size after the shuffle (the shuffle keeps the
number of partitions: ``ddf.repartition(npartitions=N)`` first to choose it).

>>> import numpy as np, pandas as pd, dask.dataframe as dd
>>> import ad_pipeline
>>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
>>> df = pd.DataFrame({"key": np.repeat(["a", "b"], 24), "value": x,
...                    "timestamp": np.tile(pd.date_range("2024-01-01", periods=24, freq="h"), 2)})
>>> out = dd.from_pandas(df, npartitions=2).anomaly.detect(by="key", period=4, sensitivity=95)
>>> out.compute(scheduler="sync").query("is_anomaly")[["key", "value"]].to_dict("records")
[{'key': 'a', 'value': 30.0}]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .engine.layout import Column
from .errors import BadArgument, MissingDependency
from .frames.methods import AnomalyMethods, Request, run

try:
    import dask.dataframe as dd
    import pandas as pd
except ImportError:  # pragma: no cover - depends on the environment
    raise MissingDependency.for_extra("dask", "dask") from None

from .frames.pandas import AnomalyFrameAccessor

__all__ = ["DaskAnomalyAccessor", "register"]

_EMPTY = {"bool": np.bool_, "float": np.float64, "int": np.int64, "str": object}


def _empty_result(pdf: pd.DataFrame, req: Request) -> pd.DataFrame:
    """What the pandas accessor returns for ``pdf`` without rows (the output's meta)."""
    mask = np.zeros(0, dtype=bool) if req.errors == "coerce" else None
    cols = [Column(n, np.zeros(0, dtype=_EMPTY[k]), mask) for n, k in req.result_kinds().items()]
    rows = np.zeros(0, dtype=np.int64) if req.kind == "last" else None
    return AnomalyFrameAccessor(pdf.iloc[:0])._write(req, rows, cols)


def _partition(pdf: pd.DataFrame, req: Request) -> pd.DataFrame:
    """One partition of whole series through the pandas accessor (one engine call)."""
    if len(pdf) == 0:
        return _empty_result(pdf, req)
    acc = AnomalyFrameAccessor(pdf)
    rows, columns = run(req, acc._read(req))
    return acc._write(req, rows, columns)


class DaskAnomalyAccessor(AnomalyMethods):
    """``ddf.anomaly``: the pandas accessor's methods over a Dask DataFrame (lazy results).

    ``timestamp`` is required: a shuffle does not keep the order of rows.
    """

    def __init__(self, ddf: dd.DataFrame) -> None:
        self._ddf = ddf

    def _apply(self, req: Request) -> dd.DataFrame:
        req.check(list(self._ddf.columns))
        if req.timestamp is None:
            raise BadArgument("A shuffled Dask DataFrame has no row order: pass the 'timestamp' column.")
        meta = self._ddf._meta
        for c in req.values:  # the pandas accessor's own checks, on the empty meta
            AnomalyFrameAccessor(meta)._value_array(c)
        AnomalyFrameAccessor(meta)._timestamp_array(req.timestamp)
        ddf = self._ddf.shuffle(on=req.keys) if req.keys else self._ddf.repartition(npartitions=1)
        return ddf.map_partitions(_partition, req, meta=_empty_result(meta, req))

    def plot(self, *args: Any, **kwargs: Any) -> Any:
        raise BadArgument("Plot a Dask DataFrame after computing a few series: ddf.head(n).anomaly.plot(...).")


_registered = False


def register() -> None:
    """Register ``dask.dataframe.DataFrame.anomaly`` (idempotent; done on import)."""
    global _registered
    if not _registered:
        dd.extensions.register_dataframe_accessor("anomaly")(DaskAnomalyAccessor)
        _registered = True


register()
