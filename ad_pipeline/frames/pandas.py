"""pandas adapter: ``DataFrame.anomaly`` and ``Series.anomaly``.

Registered when ``ad_pipeline`` is imported and pandas is (or later gets) imported. The
accessor only converts: columns to numpy arrays, one engine batch call (see
:mod:`ad_pipeline.engine.layout`), result arrays back to columns.

>>> import numpy as np, pandas as pd
>>> import ad_pipeline
>>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
>>> df = pd.DataFrame({"key": np.repeat(["a", "b"], 24), "value": x,
...                    "timestamp": np.tile(pd.date_range("2024-01-01", periods=24, freq="h"), 2)})
>>> out = df.anomaly.detect(by="key", period=4, sensitivity=95)
>>> out.loc[out["is_anomaly"], ["key", "value"]].to_dict("records")
[{'key': 'a', 'value': 30.0}]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine.layout import Column
from ..errors import BadArgument, MissingDependency
from .methods import AnomalyMethods, Request, non_numeric, non_temporal
from .tabular import TabularOutlierMethods

try:
    import pandas as pd
except ImportError:  # pragma: no cover - depends on the environment
    raise MissingDependency.for_extra("pandas", "pandas") from None

__all__ = ["AnomalyFrameAccessor", "AnomalySeriesAccessor", "register"]

# pandas < 3 copies in concat unless told not to; pandas >= 3 never copies eagerly (and deprecates `copy`)
_NO_COPY: dict[str, Any] = {"copy": False} if int(pd.__version__.split(".")[0]) < 3 else {}


def _column(col: Column) -> Any:
    """A result column as a pandas array: nullable dtypes where ``errors="coerce"`` may put nulls."""
    v, m = col.values, col.mask
    if v.dtype.kind == "O":  # error codes / messages: str or None; one dtype even when all are None
        return pd.array(v, dtype="str")
    if m is None or v.dtype.kind == "f":
        return v
    if v.dtype.kind == "b":
        return pd.arrays.BooleanArray(v, m)
    return pd.arrays.IntegerArray(v.astype(np.int64, copy=False), m)


class AnomalyFrameAccessor(AnomalyMethods, TabularOutlierMethods):
    """``df.anomaly``: anomaly and change-point detection over a long frame (see :class:`AnomalyMethods`)."""

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df

    def _columns(self) -> list[str]:
        return list(self._df.columns)

    def _n_rows(self) -> int:
        return len(self._df)

    def _value_array(self, column: str) -> NDArray[np.float64]:
        s = self._df[column]
        if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            raise non_numeric(column, s.dtype)
        return s.to_numpy(dtype=np.float64, na_value=np.nan)

    def _timestamp_array(self, column: str, *, local: bool = False) -> NDArray[np.datetime64]:
        return _datetimes(self._df[column], column, local=local)

    def _key_codes(self, column: str) -> tuple[NDArray[np.int64], int]:
        codes, uniques = pd.factorize(self._df[column], use_na_sentinel=False)
        return codes.astype(np.int64, copy=False), len(uniques)

    def _key_value(self, column: str, row: int) -> Any:
        return self._df[column].iat[row]

    def _write(self, req: Request, rows: NDArray[np.int64] | None, columns: list[Column]) -> pd.DataFrame:
        new = {c.name: _column(c) for c in columns}
        if rows is None:  # concat, not assign: assign copies every column of a large frame
            df = self._df
            again = [c for c in new if c in df.columns]  # detecting a detected frame replaces results
            if again:
                df = df.drop(columns=again)
            return pd.concat([df, pd.DataFrame(new, index=df.index, copy=False)], axis=1, **_NO_COPY)
        keep = [*req.keys, *([req.timestamp] if req.timestamp else []), *req.values]
        out = self._df[keep].iloc[rows].reset_index(drop=True).assign(**new)
        if req.keys:
            out = out.sort_values(req.keys, kind="stable", na_position="last", ignore_index=True)
        return out

    def _first_series(self, by: str | Sequence[str] | None, n: int) -> AnomalyFrameAccessor:
        keys = [by] if isinstance(by, str) else list(by or [])
        first = self._df[keys].drop_duplicates().sort_values(keys, na_position="last").head(n)
        mask = pd.MultiIndex.from_frame(self._df[keys]).isin(pd.MultiIndex.from_frame(first))
        return AnomalyFrameAccessor(self._df[mask])


def _datetimes(s: pd.Series | pd.Index, column: str, *, local: bool = False) -> NDArray[np.datetime64]:
    """numpy or pyarrow-backed datetimes as naive ``datetime64[ns]``: UTC, or with ``local`` the
    local wall-clock times of time-zone-aware ones."""
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        raise non_temporal(column, s.dtype)
    if isinstance(s, pd.Index):
        if s.tz is not None:
            s = (s if local else s.tz_convert("UTC")).tz_localize(None)
    elif s.dt.tz is not None:
        s = (s if local else s.dt.tz_convert("UTC")).dt.tz_localize(None)
    return np.asarray(s.to_numpy(dtype="datetime64[ns]"))


class AnomalySeriesAccessor:
    """``s.anomaly`` for a Series with a DatetimeIndex: the frame methods on ``s.to_frame()``.

    Results are DataFrames on the series' index (the values in a column named after the series,
    ``"value"`` if it has no name).

    >>> import numpy as np, pandas as pd
    >>> import ad_pipeline
    >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
    >>> s = pd.Series(x, index=pd.date_range("2024-01-01", periods=48, freq="h"), name="cpu")
    >>> out = s.anomaly.detect(period=4, sensitivity=95)
    >>> out.index[out["is_anomaly"]].strftime("%H:%M").tolist()
    ['09:00']
    """

    def __init__(self, s: pd.Series) -> None:
        self._s = s

    def _frame(self) -> tuple[AnomalyFrameAccessor, str, str]:
        if not isinstance(self._s.index, pd.DatetimeIndex):
            raise BadArgument(
                "Series.anomaly needs a Series with a DatetimeIndex, got an index of type "
                f"{type(self._s.index).__name__}; use DataFrame.anomaly with timestamp=None for plain rows."
            )
        name = self._s.name if isinstance(self._s.name, str) else "value"
        ts = "timestamp" if name != "timestamp" else "timestamp_"
        df = self._s.to_frame(name)
        df.insert(0, ts, self._s.index)
        return AnomalyFrameAccessor(df), name, ts

    def detect(self, **params: Any) -> pd.DataFrame:
        """:meth:`AnomalyMethods.detect` on the series (timestamps from the index)."""
        acc, name, ts = self._frame()
        return acc.detect(name, ts, **params).drop(columns=ts)

    def detect_last(self, **params: Any) -> pd.DataFrame:
        """:meth:`AnomalyMethods.detect_last` on the series: one row, indexed by the newest timestamp."""
        acc, name, ts = self._frame()
        out = acc.detect_last(name, ts, **params)
        return out.set_index(ts).rename_axis(self._s.index.name)

    def change_points(self, **params: Any) -> pd.DataFrame:
        """:meth:`AnomalyMethods.change_points` on the series."""
        acc, name, ts = self._frame()
        return acc.change_points(name, ts, **params).drop(columns=ts)

    def plot(self, **kwargs: Any) -> Any:
        """:meth:`AnomalyMethods.plot` of the series (one panel)."""
        acc, name, ts = self._frame()
        return acc.plot(name, ts, **kwargs)


_registered = False


def register() -> None:
    """Register ``DataFrame.anomaly`` and ``Series.anomaly`` (idempotent; done on import)."""
    global _registered
    if not _registered:
        pd.api.extensions.register_dataframe_accessor("anomaly")(AnomalyFrameAccessor)
        pd.api.extensions.register_series_accessor("anomaly")(AnomalySeriesAccessor)
        _registered = True


register()
