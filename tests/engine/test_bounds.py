"""Issue 18: every input has a bounded cost and a clear answer (an AnomalyDetectorError with a code).

Each case is a reproduction from the issue: before the fix it crashed with an error that was not
ours (OverflowError, IndexError), answered wrongly, or ran for minutes.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import ad_pipeline as ad
from ad_pipeline import errors as E
from ad_pipeline.engine.prepare import MAX_GRID_FACTOR

RNG = np.random.default_rng(18)
X48 = RNG.normal(size=48)
HOURS = np.datetime64("2024-01-01T00", "ns") + np.arange(48) * np.timedelta64(1, "h")
MONTHS = np.arange("2000-01", "2004-01", dtype="datetime64[M]").astype("datetime64[ns]")
DAYS12 = np.arange("2024-01-01", "2024-01-13", dtype="datetime64[D]").astype("datetime64[ns]")


def _daily(start: str, n: int) -> np.ndarray:
    return np.datetime64(start, "ns") + np.arange(n) * np.timedelta64(1, "D")


# --------------------------------------------------------------------------- crashes that were not ours


@pytest.mark.parametrize(
    ("timestamps", "granularity", "interval", "fragments"),
    [
        (HOURS, "hourly", 2_562_048, ("at most 2562047", "'hourly'", "got 2562048")),
        (MONTHS, "monthly", 10**20, ("at most 3504", "'monthly'", "got 100000000000000000000")),
        (MONTHS, "yearly", 293, ("at most 292", "'yearly'", "got 293")),
        (None, None, 2**63, ("at most", "got 9223372036854775808")),
    ],
)
def test_custom_interval_beyond_292_years_is_refused(timestamps, granularity, interval, fragments):
    for fn in (ad.detect_entire, ad.detect_last, ad.detect_change_points):
        with pytest.raises(E.InvalidCustomInterval) as info:
            fn(X48, timestamps, granularity=granularity, custom_interval=interval)
        for f in fragments:
            assert f in info.value.message


def test_largest_custom_interval_is_a_grid_not_a_crash():
    ts = np.datetime64("1700-01-01T00", "ns") + np.arange(2) * np.timedelta64(2_562_047, "h")
    with pytest.raises(E.InvalidSeries, match="at least 12 points"):
        ad.detect_entire(X48[:2], ts, granularity="hourly", custom_interval=2_562_047)


@pytest.mark.parametrize("window", [2**62, 2**63, 10**7, 49])
def test_stable_trend_window_longer_than_the_series_is_refused(window):
    with pytest.raises(E.InvalidModelArgument) as info:
        ad.detect_change_points(X48, stable_trend_window=window)
    assert "'stable_trend_window'" in info.value.message and "48 grid points" in info.value.message
    assert f"got {window}" in info.value.message


def test_stable_trend_window_of_the_whole_series_still_runs():
    r = ad.detect_change_points(X48, stable_trend_window=48)
    assert r.is_change_point.shape == (48,)


def test_backward_jump_beyond_292_years_is_unsorted_not_an_index_error():
    ts = np.r_[np.datetime64("2262-01-01", "ns"), _daily("1678-02-01", 12)]
    for granularity in ("daily", None, "none"):
        with pytest.raises(E.InvalidSeries, match="sorted by timestamp.*at index 1"):
            ad.detect_entire(RNG.normal(size=13), ts, granularity=granularity)


def test_sorted_span_beyond_292_years_is_not_called_unsorted():
    ts = np.r_[np.datetime64("1678-02-01", "ns"), _daily("2262-01-01", 12)]
    x = RNG.normal(size=13)
    with pytest.raises(E.InvalidGranularity, match="213282 grid points for 13 points"):
        ad.detect_entire(x, ts)  # inferred: daily, far too sparse
    with pytest.raises(E.InvalidSeries, match="213282 grid points for 13 points"):
        ad.detect_change_points(x, ts, granularity="daily")
    r = ad.detect_entire(x, ts, granularity="none")  # the timestamps only order the points
    assert r.expected_values.shape == (13,)


# --------------------------------------------------------------------------- grids far finer than the data


def test_change_points_on_a_grid_far_finer_than_the_data_are_refused_at_once():
    """12 daily points sent as secondly: 950,401 grid points (147 s before)."""
    x = RNG.normal(size=12)
    with pytest.raises(E.InvalidSeries) as info:
        ad.detect_change_points(x, DAYS12, granularity="secondly")
    assert "950401 grid points for 12 points" in info.value.message
    assert f"at most {MAX_GRID_FACTOR} grid points per given point" in info.value.message


def test_change_points_on_a_mostly_missing_grid_search_no_period():
    """Hourly data sent as minutely: 60 grid points per point, no period search over the filled grid."""
    ts = np.datetime64("2024-01-01T00", "ns") + np.arange(48) * np.timedelta64(1, "h")
    r = ad.detect_change_points(np.sin(np.arange(48) * 2 * np.pi / 24), ts, granularity="minutely")
    assert r.period == 0
    assert r.is_change_point.shape == (48,)


def test_detection_keeps_sparse_explicit_grids():
    """Azure answered 24 microsecond points over 23,001 grid points; an explicit sparse grid stays legal."""
    ts = np.datetime64("2024-01-01", "ns") + np.arange(24) * np.timedelta64(1_000, "us")
    r = ad.detect_entire(RNG.normal(size=24), ts, granularity="microsecond")
    assert r.expected_values.shape == (24,)


# --------------------------------------------------------------------------- timestamps with granularity none


def test_granularity_none_still_requires_sorted_unique_timestamps():
    ts = _daily("2024-01-01", 24)
    x = RNG.normal(size=24)
    with pytest.raises(E.InvalidSeries, match="sorted by timestamp"):
        ad.detect_entire(x, ts[::-1], granularity="none")
    with pytest.raises(E.InvalidSeries, match="sorted by timestamp"):
        ad.detect_last(x, ts[::-1], granularity="none")  # newest first: would judge the oldest point
    dup = ts.copy()
    dup[5] = dup[4]
    with pytest.raises(E.InvalidSeries, match="duplicated timestamp"):
        ad.detect_entire(x, dup, granularity="none")


@pytest.mark.parametrize("offset", ["+99:99", "+24:00", "-05:60", "+-1:00"])
def test_impossible_utc_offsets_are_refused(offset):
    ts = [f"2024-01-{d:02d}T00:00:00{offset if d == 5 else 'Z'}" for d in range(1, 25)]
    with pytest.raises(E.BadArgument, match=re.escape(f"got '2024-01-05T00:00:00{offset}' at index 4")):
        ad.detect_entire(RNG.normal(size=24), ts)


def test_valid_utc_offsets_still_convert():
    ts = [f"2024-01-{d:02d}T05:30:00+05:30" for d in range(1, 25)]
    r = ad.detect_entire(RNG.normal(size=24), ts)
    assert r.expected_values.shape == (24,)


# --------------------------------------------------------------------------- errors="coerce" and timestamps


@pytest.mark.parametrize("bad", [np.datetime64("NaT"), "3000-01-01T00:00:00Z", "soon"])
@pytest.mark.parametrize("fn", [ad.detect_entire_batch, ad.detect_last_batch, ad.detect_change_points_batch])
def test_coerce_keeps_the_other_series_when_one_timestamp_is_unusable(fn, bad):
    n = 30
    values = RNG.normal(size=3 * n)
    ts = np.concatenate([_daily("2024-01-01", n)] * 3).astype(object if isinstance(bad, str) else "datetime64[ns]")
    if isinstance(bad, str):
        ts = np.array([f"{t}Z" for t in np.datetime_as_string(ts.astype("datetime64[ns]"), unit="s")], dtype=object)
    ts[n + 7] = bad
    r = fn(values, [0, n, 2 * n, 3 * n], ts, errors="coerce", keys=["a", "b", "c"])
    assert r.valid.tolist() == [True, False, True]
    assert r.error_code[1] == "BadArgument"
    assert "index 7" in r.error_message[1] and "series 'b'" in r.error_message[1]
    with pytest.raises(E.BadArgument, match="index 7.*series 'b'"):
        fn(values, [0, n, 2 * n, 3 * n], ts, errors="raise", keys=["a", "b", "c"])


# --------------------------------------------------------------------------- the boundary invariant


def test_unflagged_points_lie_inside_their_boundaries_with_zero_margins():
    """Values ~1e-13 with sensitivity 100 (zero margins): the margin was nudged by 8 ulps at most,
    leaving an unflagged point a few ulps outside its boundary."""
    rng = np.random.default_rng(1)
    values, offsets, periods = [], [0], []
    for _ in range(400):
        n = int(rng.integers(12, 120))
        p = int(rng.integers(2, max(3, (n - 1) // 2)))
        x = rng.normal(size=n) * 10.0 ** rng.integers(-20, 3)
        x[rng.random(n) < rng.uniform(0, 0.4)] = np.nan
        values.append(x)
        offsets.append(offsets[-1] + n)
        periods.append(p)
    v = np.concatenate(values)
    r = ad.detect_entire_batch(v, offsets, errors="coerce", period=periods, sensitivity=100)
    ok = ~np.isnan(v) & ~r.is_anomaly & ~np.isnan(r.expected_values)
    assert ok.sum() > 1000
    outside = ok & ((v > r.upper_boundaries) | (v < r.lower_boundaries))
    assert not outside.any(), np.flatnonzero(outside)[:5]
