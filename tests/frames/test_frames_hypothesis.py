"""Hypothesis: random long frames (keys, gaps, NaNs, several value columns, any row order)
never crash, keep the rows and their order, and pandas and polars agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ad_pipeline  # noqa: F401
from ad_pipeline.engine.result import column_attributes


@st.composite
def long_frames(draw):  # type: ignore[no-untyped-def]
    n_series = draw(st.integers(1, 4))
    n_values = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    keys, ts, vals = [], [], []
    step = draw(st.sampled_from([60, 300, 3600, 86_400]))
    for i in range(n_series):
        n = draw(st.integers(0, 40))
        grid = np.sort(rng.choice(60, size=min(n, 60), replace=False))  # gaps
        keys += [draw(st.sampled_from(["a", "b", "c", "d", "e"])) if i else "a"] * len(grid)
        ts.append(np.datetime64("2024-01-01", "ns") + grid * np.timedelta64(step, "s"))
        v = rng.normal(10, 2, (len(grid), n_values))
        v[rng.random(v.shape) < draw(st.sampled_from([0.0, 0.1, 0.5]))] = np.nan
        vals.append(v)
    frame = {"key": np.array(keys, dtype=str), "timestamp": np.concatenate(ts)}
    vals = np.concatenate(vals) if vals else np.zeros((0, n_values))
    for j in range(n_values):
        frame[f"v{j}"] = vals[:, j]
    # duplicated (key, timestamp) rows come from keys drawn twice: they are invalid series, coerced
    perm = rng.permutation(len(frame["key"]))
    frame = {k: v[perm] for k, v in frame.items()}
    frame["row"] = np.arange(len(perm))
    return frame, [f"v{j}" for j in range(n_values)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=long_frames(), as_list=st.booleans())
def test_random_frames_keep_rows_and_agree(data, as_list) -> None:  # type: ignore[no-untyped-def]
    cols, values = data
    value = values if (as_list or len(values) > 1) else values[0]
    kw = {"value": value, "by": "key", "errors": "coerce", "method": "auto"}
    pdf = pd.DataFrame(cols)
    out_pd = pdf.anomaly.detect(**kw)
    out_pl = pl.DataFrame(cols).anomaly.detect(**kw)
    out_lazy = pl.LazyFrame(cols).anomaly.detect(**kw).collect()
    n = len(cols["row"])
    assert len(out_pd) == len(out_pl) == len(out_lazy) == n
    assert out_pd["row"].tolist() == out_pl["row"].to_list() == out_lazy["row"].to_list() == list(range(n))
    prefix = [f"{v}_" for v in values] if isinstance(value, list) else [""]
    for p in prefix:
        for c in column_attributes("entire"):
            a = out_pd[p + c].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
            b = out_pl[p + c].cast(pl.Float64).fill_null(np.nan).to_numpy()
            np.testing.assert_array_equal(a, b, err_msg=p + c)
            assert out_lazy[p + c].equals(out_pl[p + c], check_names=True)
        flagged = out_pl.filter(pl.col(p + "is_anomaly").fill_null(False))
        assert flagged[p.rstrip("_") or "v0"].is_not_nan().all() if len(flagged) else True
    last = pdf.anomaly.detect_last(**kw)
    assert len(last) == len(set(cols["key"]))
