"""polars adapter: the ``DataFrame.anomaly`` and ``LazyFrame.anomaly`` namespaces.

Registered when ``ad_pipeline`` is imported and polars is (or later gets) imported. The
namespace only converts: columns to numpy arrays, one engine batch call (see
:mod:`ad_pipeline.engine.layout`), result arrays back to columns. On a LazyFrame the methods add a
step to the plan (with its output schema declared); nothing runs before ``collect()``.

>>> import numpy as np, polars as pl
>>> import ad_pipeline
>>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
>>> df = pl.DataFrame({"key": np.repeat(["a", "b"], 24), "value": x})
>>> out = df.anomaly.detect(timestamp=None, by="key", period=4, sensitivity=95)
>>> out.filter(pl.col("is_anomaly")).select("key", "value").rows()
[('a', 30.0)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine.layout import Column, dense_codes
from ..errors import MissingDependency
from .methods import AnomalyMethods, Request, non_numeric, non_temporal
from .tabular import TabularOutlierMethods

try:
    import polars as pl
except ImportError:  # pragma: no cover - depends on the environment
    raise MissingDependency.for_extra("polars", "polars") from None

__all__ = ["AnomalyFrameNamespace", "AnomalyLazyFrameNamespace", "register"]

_DTYPES = {"bool": pl.Boolean, "float": pl.Float64, "int": pl.Int64, "str": pl.String}


def _series(col: Column) -> pl.Series:
    """A result column as a polars Series; masked entries (``errors="coerce"``) become null."""
    v, m = col.values, col.mask
    if v.dtype.kind == "O":  # error codes/messages: str or None
        import pyarrow as pa

        return pl.Series(col.name, pl.from_arrow(pa.array(v, type=pa.large_string())), dtype=pl.String)
    s = pl.Series(col.name, v)
    if m is not None and m.any():
        s = s.scatter(np.flatnonzero(m), None)
    return s


class AnomalyFrameNamespace(AnomalyMethods, TabularOutlierMethods):
    """``df.anomaly`` on a polars DataFrame (see :class:`ad_pipeline.frames.methods.AnomalyMethods`)."""

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    def _columns(self) -> list[str]:
        return list(self._df.columns)

    def _n_rows(self) -> int:
        return self._df.height

    def _value_array(self, column: str) -> NDArray[np.float64]:
        s = self._df.get_column(column)
        if not s.dtype.is_numeric():
            raise non_numeric(column, s.dtype)
        return s.cast(pl.Float64).fill_null(np.nan).to_numpy()

    def _timestamp_array(self, column: str, *, local: bool = False) -> NDArray[np.datetime64]:
        s = self._df.get_column(column)
        if s.dtype == pl.Date:
            s = s.cast(pl.Datetime("ns"))
        elif isinstance(s.dtype, pl.Datetime):
            if s.dtype.time_zone is not None:
                s = (s if local else s.dt.convert_time_zone("UTC")).dt.replace_time_zone(None)
            s = s.dt.cast_time_unit("ns")
        else:
            raise non_temporal(column, s.dtype)
        return np.asarray(s.to_numpy(), dtype="datetime64[ns]")

    def _key_codes(self, column: str) -> tuple[NDArray[np.int64], int]:
        s = self._df.get_column(column)
        if s.dtype.is_integer() and s.null_count() == 0:
            return dense_codes(s.to_numpy())
        if s.dtype in (pl.String, pl.Categorical) or isinstance(s.dtype, pl.Enum):
            phys = s.cast(pl.Categorical).to_physical()
        else:
            phys = s.rank("dense")
        # null is a key of its own: one code past the others
        phys = phys.cast(pl.Int64).fill_null(-1)
        codes = phys.to_numpy()
        return dense_codes(np.where(codes < 0, codes.max() + 1, codes) if s.null_count() else codes)

    def _key_value(self, column: str, row: int) -> Any:
        return self._df.get_column(column)[row]

    def _write(self, req: Request, rows: NDArray[np.int64] | None, columns: list[Column]) -> pl.DataFrame:
        new = [_series(c) for c in columns]
        if rows is None:
            return self._df.with_columns(new)
        keep = [*req.keys, *([req.timestamp] if req.timestamp else []), *req.values]
        out = self._df.select(keep)[rows].with_columns(new)
        if req.keys:
            out = out.sort(req.keys, nulls_last=True, maintain_order=True)
        return out

    def _first_series(self, by: str | Sequence[str] | None, n: int) -> AnomalyFrameNamespace:
        keys = [by] if isinstance(by, str) else list(by or [])
        first = self._df.select(keys).unique().sort(keys, nulls_last=True).head(n)
        return AnomalyFrameNamespace(self._df.join(first, on=keys, how="semi", nulls_equal=True, maintain_order="left"))


class AnomalyLazyFrameNamespace(AnomalyMethods):
    """``lf.anomaly`` on a polars LazyFrame: the same methods, returning LazyFrames.

    Arguments and columns are checked against the schema at once; the detection runs on the
    whole collected input when the plan is collected (one engine call, as for a DataFrame).

    >>> import numpy as np, polars as pl
    >>> import ad_pipeline
    >>> lf = pl.LazyFrame({"value": np.tile([1.0, 2.0, 3.0, 2.0], 6)})
    >>> plan = lf.anomaly.detect(timestamp=None)
    >>> isinstance(plan, pl.LazyFrame), plan.collect().height
    (True, 24)
    """

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def _apply(self, req: Request) -> pl.LazyFrame:
        schema = self._lf.collect_schema()
        req.check(list(schema.names()))
        if req.kind == "last":
            keep = [*req.keys, *([req.timestamp] if req.timestamp else []), *req.values]
            out = pl.Schema({c: schema[c] for c in keep})
        else:
            out = pl.Schema(schema)
        for name, kind in req.result_kinds().items():
            out[name] = _DTYPES[kind]

        def step(df: pl.DataFrame) -> pl.DataFrame:
            return AnomalyFrameNamespace(df)._apply(req)

        return self._lf.map_batches(step, schema=out)

    def plot(self, *args: Any, **kwargs: Any) -> Any:
        """Collect the plan and plot it (see :meth:`AnomalyMethods.plot`)."""
        return AnomalyFrameNamespace(self._lf.collect()).plot(*args, **kwargs)


_registered = False


def register() -> None:
    """Register the ``anomaly`` namespace on DataFrame and LazyFrame (idempotent; done on import)."""
    global _registered
    if not _registered:
        pl.api.register_dataframe_namespace("anomaly")(AnomalyFrameNamespace)
        pl.api.register_lazyframe_namespace("anomaly")(AnomalyLazyFrameNamespace)
        _registered = True


register()
