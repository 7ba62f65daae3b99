"""The frame-agnostic conversion: sort layout, codes, naming."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ad_pipeline.engine.layout import combine_codes, dense_codes, sort_layout
from ad_pipeline.errors import BadArgument
from ad_pipeline.frames.methods import Request, value_columns

START = np.datetime64("2024-01-01", "ns")


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), min_size=1, max_size=80),
    unit=st.sampled_from([1, 7, 60 * 10**9, 86_400 * 10**9]),
    far=st.booleans(),
    with_codes=st.booleans(),
    with_ts=st.booleans(),
)
def test_sort_layout_is_a_stable_sort_by_key_then_time(rows, unit, far, with_codes, with_ts) -> None:  # type: ignore[no-untyped-def]
    codes = np.array([r[0] for r in rows])
    steps = np.array([r[1] for r in rows], dtype=np.int64)
    ts = START + steps * np.timedelta64(unit, "ns")
    if far:  # a span too wide for the packed sort key: the fallback path
        ts = ts + np.where(codes % 2 == 0, np.timedelta64(0, "ns"), np.timedelta64(200 * 365 * 86_400 * 10**9, "ns"))
    c = codes if with_codes else None
    t = ts if with_ts else None
    lay = sort_layout(c, t, len(rows))
    sort_keys = [np.arange(len(rows))] + ([ts.view(np.int64)] if with_ts else []) + ([codes] if with_codes else [])
    want = np.lexsort(tuple(sort_keys))
    order = np.arange(len(rows)) if lay.order is None else lay.order
    np.testing.assert_array_equal(order, want)
    if with_ts:
        np.testing.assert_array_equal(lay.sorted_timestamps, ts[want])
    sorted_codes = codes[want] if with_codes else np.zeros(len(rows))
    bounds = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1, len(rows)]
    np.testing.assert_array_equal(lay.offsets, bounds)
    x = np.arange(len(rows), dtype=float) * 1.5
    np.testing.assert_array_equal(lay.scatter(lay.gather(x)), x)


def test_sorted_input_is_not_moved() -> None:
    lay = sort_layout(np.array([0, 0, 1, 1]), START + np.array([0, 5, 0, 5]).astype("timedelta64[m]"))
    assert lay.order is None and lay.offsets.tolist() == [0, 2, 4]
    assert lay.first_rows.tolist() == [0, 2] and lay.last_rows.tolist() == [1, 3]


def test_codes() -> None:
    assert dense_codes(np.array([10**15, -4, 10**15]))[0].tolist() == [1, 0, 1]
    codes, n = combine_codes([(np.array([0, 1, 1, 0]), 2), (np.array([2, 0, 2, 2]), 3)])
    assert n == 6 and len(set(codes.tolist())) == 3 and codes[0] == codes[3]
    big = np.array([0, 2**40, 2**40])
    codes, _ = combine_codes([(big, 2**41), (np.array([1, 1, 1]), 2**30)])
    assert codes[1] == codes[2] != codes[0]


def test_names() -> None:
    assert value_columns("v") == (["v"], False)
    assert value_columns(["a"]) == (["a"], True)
    kinds = Request("change_points", ["a", "b"], "t", None, "coerce", {}).result_kinds()
    assert list(kinds) == [
        "a_is_change_point", "a_change_point_confidence", "a_anomaly_error_code", "a_anomaly_error",
        "b_is_change_point", "b_change_point_confidence", "b_anomaly_error_code", "b_anomaly_error",
    ]  # fmt: skip
    assert kinds["b_anomaly_error"] == "str" and kinds["a_is_change_point"] == "bool"
    assert list(Request("detect", "v", "t", None, "raise", {}).result_kinds())[-1] == "period"
    with pytest.raises(BadArgument):
        value_columns(["a", "a"])
