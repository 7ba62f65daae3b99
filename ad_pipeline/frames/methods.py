"""``df.anomaly``: the methods shared by the pandas accessor and the polars namespaces.

An adapter reads its frame into a :class:`~ad_pipeline.engine.layout.FrameData` (key codes,
timestamps, value columns as numpy arrays) and hands it to :func:`run`; the sort into series, the
one engine batch call and the scatter back to the input rows are :mod:`ad_pipeline.engine.layout`'s.
Nothing here imports pandas or polars.

>>> req = Request("detect", ["a", "b"], None, "key", "raise", {})
>>> req.values, req.keys, req.prefixed
(['a', 'b'], ['key'], True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine.batch import CHANGE_POINT_DEFAULTS, DETECT_DEFAULTS
from ..engine.granularity import CALENDAR
from ..engine.layout import (
    Column,
    FrameData,
    check_errors,
    check_params,
    column_name,
    combine_codes,
    run_change_points,
    run_detect,
    run_last,
)
from ..engine.params import forwards
from ..engine.result import columns_for
from ..errors import BadArgument

# --------------------------------------------------------------------------- column naming


def value_columns(value: str | Sequence[str]) -> tuple[list[str], bool]:
    """The value columns and whether result columns get their name as prefix (``value`` was a list).

    >>> value_columns("value"), value_columns(["a", "b"])
    ((['value'], False), (['a', 'b'], True))
    """
    if isinstance(value, str):
        return [value], False
    cols = list(value)
    if not cols or not all(isinstance(c, str) for c in cols):
        raise BadArgument(f"The 'value' argument must be a column name or a list of them, got {value!r}.")
    if len(set(cols)) != len(cols):
        raise BadArgument(f"The 'value' argument must not repeat a column, got {cols!r}.")
    return cols, True


def key_columns(by: str | Sequence[str] | None) -> list[str]:
    """The key columns named by ``by`` (none: the frame is one series)."""
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    cols = list(by)
    if not all(isinstance(c, str) for c in cols):
        raise BadArgument(f"The 'by' argument must be a column name or a list of them, got {by!r}.")
    return cols


def check_columns(frame_columns: Sequence[str], role: dict[str, list[str]]) -> None:
    """Refuse a missing column, naming the argument that asked for it."""
    present = set(frame_columns)
    for arg, cols in role.items():
        for c in cols:
            if c not in present:
                raise BadArgument(
                    f"The {arg!r} column {c!r} is not in the frame; its columns are {list(frame_columns)!r}."
                )




# --------------------------------------------------------------------------- input checks shared by adapters


def check_no_missing_timestamps(ts: NDArray[np.datetime64], column: str) -> None:
    """Refuse NaT timestamps naming the column and the first row."""
    nat = np.isnat(ts)
    if nat.any():
        i = int(np.flatnonzero(nat)[0])
        raise BadArgument(f"The 'timestamp' column {column!r} must not hold missing values, got one in row {i}.")


def non_numeric(column: str, dtype: Any) -> BadArgument:
    return BadArgument(f"The 'value' column {column!r} must be numeric, got dtype {dtype}.")


def non_temporal(column: str, dtype: Any) -> BadArgument:
    return BadArgument(
        f"The 'timestamp' column {column!r} must hold datetimes (or dates), got dtype {dtype}; "
        "convert it first (pandas: pd.to_datetime, polars: str.to_datetime) or pass timestamp=None."
    )


# --------------------------------------------------------------------------- the accessor shared by pandas and polars


@dataclass(frozen=True)
class Request:
    """One accessor call, before it touches a frame."""

    kind: str  # "detect" | "last" | "change_points"
    value: str | Sequence[str]
    timestamp: str | None
    by: str | Sequence[str] | None
    errors: str
    params: dict[str, Any]

    @property
    def values(self) -> list[str]:
        return value_columns(self.value)[0]

    @property
    def prefixed(self) -> bool:
        return value_columns(self.value)[1]

    @property
    def keys(self) -> list[str]:
        return key_columns(self.by)

    @property
    def job(self) -> str:
        """The engine job ("entire", "last", "change_points"), as engine/result.py names it."""
        return "entire" if self.kind == "detect" else self.kind

    def result_kinds(self) -> dict[str, str]:
        """Output column name -> kind ("bool", "float", "int", "str") of the added result columns."""
        table = columns_for(self.job, errors=self.errors == "coerce")
        return {column_name(v, c.name, self.prefixed): c.kind for v in self.values for c in table}

    def check(self, columns: Sequence[str]) -> None:
        """Refuse unknown arguments and missing columns before reading anything."""
        check_errors(self.errors)
        defaults = CHANGE_POINT_DEFAULTS if self.kind == "change_points" else DETECT_DEFAULTS
        check_params(self.params, defaults)
        role = {"value": self.values, "by": self.keys}
        if self.timestamp is not None:
            role["timestamp"] = [self.timestamp]
        check_columns(columns, role)


def run(req: Request, data: FrameData) -> tuple[NDArray[np.int64] | None, list[Column]]:
    """Run ``req`` over ``data``: ``(rows, columns)``; ``rows`` (last detect) are the input rows to keep."""
    if req.kind == "detect":
        return None, run_detect(data, errors=req.errors, **req.params)
    if req.kind == "change_points":
        return None, run_change_points(data, errors=req.errors, **req.params)
    return run_last(data, errors=req.errors, **req.params)


# the bodies of the accessor methods below (@forwards binds a call to the method's signature and
# hands over the engine parameters as ``params``, the dict of engine/params.py's table)


def _detect(self: AnomalyMethods, value: Any, timestamp: Any, by: Any, *, errors: str, params: dict[str, Any]) -> Any:
    return self._apply(Request("detect", value, timestamp, by, errors, params))


def _detect_last(
    self: AnomalyMethods, value: Any, timestamp: Any, by: Any, *, errors: str, params: dict[str, Any]
) -> Any:
    return self._apply(Request("last", value, timestamp, by, errors, params))


def _change_points(
    self: AnomalyMethods, value: Any, timestamp: Any, by: Any, *, errors: str, params: dict[str, Any]
) -> Any:
    return self._apply(Request("change_points", value, timestamp, by, errors, params))


class AnomalyMethods:
    """``df.anomaly``: the methods of the pandas accessor and the polars namespaces.

    A subclass converts: :meth:`_apply` reads its frame into a :class:`FrameData`, calls
    :func:`run` and writes the columns back. The methods here only gather arguments.
    """

    # ---- what an adapter provides: reading columns as numpy arrays, writing columns back

    def _columns(self) -> list[str]:  # pragma: no cover - each adapter
        raise NotImplementedError

    def _n_rows(self) -> int:  # pragma: no cover
        raise NotImplementedError

    def _value_array(self, column: str) -> NDArray[np.float64]:  # pragma: no cover
        """float64 values, nulls as NaN; refuses non-numeric columns."""
        raise NotImplementedError

    def _timestamp_array(self, column: str, *, local: bool = False) -> NDArray[np.datetime64]:  # pragma: no cover
        """``datetime64[ns]``, naive: UTC, or with ``local`` a time-zone-aware column's local
        wall-clock times; refuses non-temporal columns."""
        raise NotImplementedError

    def _key_codes(self, column: str) -> tuple[NDArray[np.int64], int]:  # pragma: no cover
        """Integer codes of a key column (equal keys, equal codes; null is a key) and their count."""
        raise NotImplementedError

    def _key_value(self, column: str, row: int) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _write(self, req: Request, rows: NDArray[np.int64] | None, columns: list[Column]) -> Any:  # pragma: no cover
        """The output frame: the input (or its ``rows``, then sorted by key) plus ``columns``."""
        raise NotImplementedError

    def _first_series(self, by: str | Sequence[str] | None, n: int) -> AnomalyMethods:  # pragma: no cover
        """The accessor of a frame holding only the first ``n`` keys (sorted)."""
        raise NotImplementedError

    # ---- shared

    def _read(self, req: Request) -> FrameData:
        """The frame as numpy arrays (after checking arguments and columns)."""
        req.check(self._columns())
        values = {c: self._value_array(c) for c in req.values}
        ts = None
        if req.timestamp is not None:
            # a calendar grid (daily .. yearly) of time-zone-aware data is laid on local wall-clock
            # time, as the engine does for strings with offsets: local midnights across a DST change
            local = req.params.get("granularity") in CALENDAR
            ts = self._timestamp_array(req.timestamp, local=local)
            if req.errors == "raise":  # with "coerce" the engine refuses only the series of a missing one
                check_no_missing_timestamps(ts, req.timestamp)
        keys = req.keys
        codes = combine_codes([self._key_codes(k) for k in keys])[0] if keys else None

        def key_of_row(i: int) -> Any:
            vals = tuple(_plain(self._key_value(k, i)) for k in keys)
            return vals[0] if len(vals) == 1 else vals

        return FrameData(
            n_rows=self._n_rows(),
            codes=codes,
            timestamps=ts,
            values=values,
            key_of_row=key_of_row if keys else None,
            prefixed=req.prefixed,
        )

    def _apply(self, req: Request) -> Any:
        data = self._read(req)
        rows, columns = run(req, data)
        return self._write(req, rows, columns)

    @forwards("entire", _detect)
    def detect(
        self,
        value: str | Sequence[str] = "value",
        timestamp: str | None = "timestamp",
        by: str | Sequence[str] | None = None,
        *,
        granularity: str | None = None,
        custom_interval: int | None = None,
        period: int | None = None,
        sensitivity: float = 99,
        max_anomaly_ratio: float = 0.25,
        impute_mode: str = "auto",
        impute_fixed_value: float | None = None,
        boundary_version: str = "V1",
        method: str = "azure",
        errors: str = "raise",
    ) -> Any:
        """Entire-series detection of every series (one per ``by`` key): the rows plus result columns.

        Returns the input rows in their order, with their other columns, plus the result columns
        ``is_anomaly``, ``is_positive_anomaly``, ``is_negative_anomaly``, ``expected_value``,
        ``lower_boundary``, ``upper_boundary``, ``lower_margin``, ``upper_margin``, ``severity``,
        ``period`` (prefixed ``<column>_`` when ``value`` is a list). The rows need not be sorted.
        All series go to the engine in one batch call.

        Parameters
        ----------
        value : str or list of str
            The value column(s); a list detects each column independently.
        timestamp : str or None
            The datetime column; ``None`` treats rows (per key, in input order) as a regular grid.
        by : str or list of str, optional
            Key column(s): one series per key; ``None``: the whole frame is one series.
        errors : {"raise", "coerce"}
            ``"raise"``: the first invalid series raises (its key in the message); ``"coerce"``:
            invalid series get null results and ``anomaly_error_code`` / ``anomaly_error``.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> import ad_pipeline
        >>> ts = pd.date_range("2024-01-01", periods=48, freq="h")
        >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
        >>> df = pd.DataFrame({"timestamp": ts, "value": x})
        >>> out = df.anomaly.detect(period=4, sensitivity=95)
        >>> out.index[out["is_anomaly"]].tolist()
        [9]
        """
        raise NotImplementedError("@forwards calls _detect")

    @forwards("last", _detect_last)
    def detect_last(
        self,
        value: str | Sequence[str] = "value",
        timestamp: str | None = "timestamp",
        by: str | Sequence[str] | None = None,
        *,
        granularity: str | None = None,
        custom_interval: int | None = None,
        period: int | None = None,
        sensitivity: float = 99,
        max_anomaly_ratio: float = 0.25,
        impute_mode: str = "auto",
        impute_fixed_value: float | None = None,
        boundary_version: str = "V1",
        method: str = "azure",
        errors: str = "raise",
    ) -> Any:
        """Last-point detection: one row per series, sorted by key.

        Each row holds the key columns, the newest timestamp and value(s) of the series and the
        result columns of :meth:`detect` (``is_anomaly`` ... ``period``) plus ``suggested_window``.
        Arguments as in :meth:`detect`.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> import ad_pipeline
        >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 8); x[-1] = 40.0
        >>> df = pd.DataFrame({"key": "a", "timestamp": pd.date_range("2024-01-01", periods=32, freq="D"), "value": x})
        >>> df.anomaly.detect_last(by="key")[["key", "value", "is_anomaly"]].to_dict("records")
        [{'key': 'a', 'value': 40.0, 'is_anomaly': True}]
        """
        raise NotImplementedError("@forwards calls _detect_last")

    @forwards("change_points", _change_points)
    def change_points(
        self,
        value: str | Sequence[str] = "value",
        timestamp: str | None = "timestamp",
        by: str | Sequence[str] | None = None,
        *,
        granularity: str | None = None,
        custom_interval: int | None = None,
        period: int | None = None,
        stable_trend_window: int | None = None,
        threshold: float | None = None,
        errors: str = "raise",
    ) -> Any:
        """Change-point detection: the rows plus ``is_change_point`` and ``change_point_confidence``.

        Parameters as :func:`ad_pipeline.detect_change_points`; the rest as in :meth:`detect`.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> import ad_pipeline
        >>> x = np.r_[np.zeros(100), np.full(100, 8.0)] + np.random.default_rng(1).normal(size=200)
        >>> df = pd.DataFrame({"value": x})
        >>> out = df.anomaly.change_points(timestamp=None)
        >>> out.columns.tolist()
        ['value', 'is_change_point', 'change_point_confidence']
        """
        raise NotImplementedError("@forwards calls _change_points")

    def plot(
        self,
        value: str = "value",
        timestamp: str | None = "timestamp",
        by: str | Sequence[str] | None = None,
        *,
        max_series: int = 6,
        change_points: bool = True,
        path: Any = None,
        title: str | None = None,
        **params: Any,
    ) -> Any:
        """Plot the first ``max_series`` series (sorted by key): values, expected values, boundaries, anomalies.

        One panel per series: the value line, the expected line, the shaded boundary band,
        positive and negative anomalies in two colours and change points as vertical lines.
        ``params`` are :meth:`detect`'s parameters. Needs matplotlib (``pip install 'ad-pipeline-anomaly[plot]'``).

        Returns
        -------
        matplotlib.figure.Figure
            The figure; also saved as PNG when ``path`` is given.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> import ad_pipeline
        >>> x = np.tile([1.0, 2.0, 3.0, 2.0], 12); x[9] = 30.0
        >>> df = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=48, freq="h"), "value": x})
        >>> fig = df.anomaly.plot(period=4)
        >>> len(fig.axes)
        1
        """
        from ..plot import plot_series

        if not isinstance(value, str):
            raise BadArgument(f"The 'value' argument of plot must be one column name, got {value!r}.")
        sub = self._first_series(by, max_series) if by is not None else self
        req = Request("detect", value, timestamp, by, "coerce", params)
        data = sub._read(req)
        _, cols = run(req, data)
        results = {c.name: c.values for c in cols}
        if change_points:
            cp = run_change_points(data, errors="coerce")
            wanted = {c.name for c in columns_for("change_points")}  # not the error columns of the detect run
            results.update({c.name: c.values for c in cp if c.name in wanted})
        return plot_series(make_panels(data, results, value), path=path, title=title)


def _plain(x: Any) -> Any:
    """numpy scalars as Python scalars (readable in messages)."""
    return x.item() if isinstance(x, np.generic) else x


def make_panels(data: FrameData, results: dict[str, NDArray[Any]], value: str) -> list[dict[str, Any]]:
    """One :func:`ad_pipeline.plot.plot_series` panel per series, points in time order."""
    layout = data.get_layout()
    panels: list[tuple[Any, dict[str, Any]]] = []
    for i in range(layout.n_series):
        a, b = int(layout.offsets[i]), int(layout.offsets[i + 1])
        rows = np.arange(a, b) if layout.order is None else layout.order[a:b]
        key = data.key_of_row(int(rows[0])) if data.key_of_row is not None and len(rows) else None
        panel: dict[str, Any] = {
            "title": value if key is None else f"{key} · {value}",
            "timestamp": None if data.timestamps is None else data.timestamps[rows],
            "value": data.values[value][rows],
        }
        for name in ("expected_value", "lower_boundary", "upper_boundary", "is_positive_anomaly",
                     "is_negative_anomaly", "is_change_point"):
            if name in results:
                panel[name] = results[name][rows]
        err = results.get("anomaly_error")
        if err is not None and len(rows) and err[rows[0]] is not None:
            panel["error"] = err[rows[0]]
        panels.append((key, panel))
    try:  # in key order (keys of mixed types keep the order of the batch)
        panels.sort(key=lambda kp: (kp[0] is None, kp[0]))
    except TypeError:
        pass
    return [p for _, p in panels]
