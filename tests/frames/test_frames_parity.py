"""Contract: pandas, polars (eager and lazy) and a direct batch call give identical results.

The direct call sorts with ``np.lexsort`` and scatters back by hand (an implementation
independent of ad_pipeline.engine.layout); flags and floats must be exactly equal, NaN in the same places.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

import ad_pipeline as ad
from ad_pipeline.engine.result import column_attributes

from ..support.frames_data import long_columns

ENTIRE_COLUMNS = column_attributes("entire")
LAST_COLUMNS = column_attributes("last")
CHANGE_POINT_COLUMNS = column_attributes("change_points")


def _as_float(a: Any) -> np.ndarray:
    """Any result column as float64 with nulls as NaN (flags as 0/1)."""
    if isinstance(a, pl.Series):
        return a.cast(pl.Float64).fill_null(np.nan).to_numpy()
    if isinstance(a, pd.Series):
        return a.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(a, dtype=np.float64)


def _direct(cols: dict[str, np.ndarray], value: str, kind: str, **params: Any) -> dict[str, np.ndarray]:
    keys, codes = np.unique(cols["key"].astype(str), return_inverse=True)
    order = np.lexsort((cols["timestamp"], codes))
    sc = codes[order]
    offsets = np.r_[0, np.flatnonzero(np.diff(sc)) + 1, len(sc)]
    v, ts = cols[value][order], cols["timestamp"][order]
    lengths = np.diff(offsets)
    if kind == "last":
        res = ad.detect_last_batch(v, offsets, ts, errors="coerce", **params)
        out = {name: getattr(res, attr).astype(np.float64) for name, attr in LAST_COLUMNS.items()}
        for a in out.values():
            a[~res.valid] = np.nan
        return out
    fn = ad.detect_entire_batch if kind == "detect" else ad.detect_change_points_batch
    mapping = ENTIRE_COLUMNS if kind == "detect" else CHANGE_POINT_COLUMNS
    res = fn(v, offsets, ts, errors="coerce", **params)
    invalid = np.repeat(~res.valid, lengths)
    out = {}
    for name, attr in mapping.items():
        arr = getattr(res, attr)
        arr = (np.repeat(arr, lengths) if name == "period" else arr).astype(np.float64)
        arr[invalid] = np.nan
        back = np.empty_like(arr)
        back[order] = arr
        out[name] = back
    return out


def _frames(cols: dict[str, np.ndarray]) -> dict[str, Any]:
    pdf = pd.DataFrame(cols)
    pdict = {**cols, "key": cols["key"].astype(str)}
    return {"pandas": pdf, "polars": pl.DataFrame(pdict), "lazy": pl.LazyFrame(pdict)}


def _call(frame: Any, method: str, **kw: Any) -> Any:
    out = getattr(frame.anomaly, method)(**kw)
    return out.collect() if isinstance(out, pl.LazyFrame) else out


@pytest.mark.parametrize("errors", ["raise", "coerce"])
def test_detect_parity(errors: str) -> None:
    cols = long_columns(short_series=errors == "coerce")
    want = _direct(cols, "value", "detect", period=12)
    for name, frame in _frames(cols).items():
        out = _call(frame, "detect", by="key", period=12, errors=errors)
        assert list(out["row"]) == list(cols["row"]), name
        for col in ENTIRE_COLUMNS:
            np.testing.assert_array_equal(_as_float(out[col]), want[col], err_msg=f"{name}: {col}")
        if errors == "coerce":
            codes = np.asarray(out["anomaly_error_code"], dtype=object)
            assert set(codes[cols["key"] == "short"]) == {"InvalidSeries"}, name
            assert pd.isna(codes[cols["key"] != "short"]).all(), name


def test_detect_parity_default_parameters_and_two_value_columns() -> None:
    cols = long_columns(n_series=3, n_points=48, seed=3)
    want = {v: _direct(cols, v, "detect") for v in ("value", "value2")}
    for name, frame in _frames(cols).items():
        out = _call(frame, "detect", value=["value", "value2"], by="key")
        for v in ("value", "value2"):
            for col in ENTIRE_COLUMNS:
                np.testing.assert_array_equal(_as_float(out[f"{v}_{col}"]), want[v][col], err_msg=f"{name} {v}_{col}")


def test_change_points_parity() -> None:
    cols = long_columns(n_series=3, n_points=80, seed=5)
    want = _direct(cols, "value", "change_points")
    for name, frame in _frames(cols).items():
        out = _call(frame, "change_points", by="key")
        for col in CHANGE_POINT_COLUMNS:
            np.testing.assert_array_equal(_as_float(out[col]), want[col], err_msg=f"{name}: {col}")


def test_detect_last_parity() -> None:
    cols = long_columns(short_series=True, nan_every=1000)
    want = _direct(cols, "value", "last", period=12)
    for name, frame in _frames(cols).items():
        out = _call(frame, "detect_last", by="key", period=12, errors="coerce")
        assert list(out["key"]) == ["s0", "s1", "s2", "s3", "short"], name
        for col in LAST_COLUMNS:
            np.testing.assert_array_equal(_as_float(out[col]), want[col], err_msg=f"{name}: {col}")
        last = {k: cols["timestamp"][cols["key"] == k].max() for k in ("s0", "short")}
        ts = np.asarray(out["timestamp"]).astype("datetime64[ns]")
        assert ts[0] == last["s0"] and ts[-1] == last["short"], name
