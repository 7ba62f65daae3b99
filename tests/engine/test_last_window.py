"""detect_last_batch(window=...): one call equals judging each series on its trimmed history.

The reference is what the warehouse scan did before (two engine calls and its own trimming): a
first call over every point gives each series' ``suggested_window`` (all its points when it is
invalid), a second call judges the newest point on the last that many points.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import pytest

import ad_pipeline as ad
from ad_pipeline.engine.result import LastBatchResult
from ad_pipeline.errors import BadArgument, InvalidSeries


def _batch() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(16)
    t0 = np.datetime64("2024-01-01T00:00")
    parts: list[tuple[str, np.ndarray, np.ndarray]] = []
    hourly = 10 + 3 * np.sin(2 * np.pi * np.arange(300) / 24) + rng.normal(0, 0.3, 300)
    hourly[-1] += 6.0  # newest point off its season
    parts.append(("seasonal hourly", hourly, t0 + np.arange(300) * np.timedelta64(1, "h")))
    daily = 50 + rng.normal(0, 1, 120)
    daily[-1] = 60.0
    parts.append(("flat daily", daily, t0 + np.arange(120) * np.timedelta64(1, "D")))
    trend = np.r_[np.linspace(0, 50, 80), 50 + rng.normal(0, 0.5, 40)]
    parts.append(("trend then flat", trend, t0 + np.arange(120) * np.timedelta64(1, "D")))
    parts.append(("short", 5 + rng.normal(0, 1, 20), t0 + np.arange(20) * np.timedelta64(1, "D")))
    parts.append(("too short", rng.normal(0, 1, 8), t0 + np.arange(8) * np.timedelta64(1, "D")))
    missing_last = rng.normal(0, 1, 60)
    missing_last[-1] = np.nan
    parts.append(("missing last", missing_last, t0 + np.arange(60) * np.timedelta64(1, "D")))
    gappy = 20 + rng.normal(0, 1, 100)
    gappy[-40:-3] = np.nan  # the trimmed window keeps too few values
    parts.append(("gappy", gappy, t0 + np.arange(100) * np.timedelta64(1, "D")))
    names = [p[0] for p in parts]
    values = np.concatenate([p[1] for p in parts])
    ts = np.concatenate([p[2] for p in parts])
    offsets = np.r_[0, np.cumsum([len(p[1]) for p in parts])]
    return values, offsets, ts, names


def _two_calls(values, offsets, ts, window, keys, **params: Any) -> LastBatchResult:  # type: ignore[no-untyped-def]
    lens = np.diff(offsets)
    if window == "suggested":
        first = ad.detect_last_batch(values, offsets, ts, errors="coerce", keys=keys, **params)
        win = np.where(first.suggested_window > 0, first.suggested_window, lens)
    else:
        win = np.full(len(lens), window)
    keep = np.minimum(lens, win)
    rows = np.concatenate([np.arange(offsets[i + 1] - keep[i], offsets[i + 1]) for i in range(len(lens))])
    new_offsets = np.r_[0, np.cumsum(keep)]
    return ad.detect_last_batch(values[rows], new_offsets, ts[rows], errors="coerce", keys=keys, **params)


def _assert_same(got: LastBatchResult, want: LastBatchResult) -> None:
    for f in fields(LastBatchResult):
        if f.name == "offsets":
            continue
        a, b = getattr(got, f.name), getattr(want, f.name)
        if a.dtype == object:
            assert a.tolist() == b.tolist(), f.name
        else:
            np.testing.assert_array_equal(a, b, err_msg=f.name)


@pytest.mark.parametrize("window", ["suggested", 30, 200])
@pytest.mark.parametrize("method", ["azure", "auto"])
def test_window_equals_the_two_call_result(window: Any, method: str) -> None:
    values, offsets, ts, names = _batch()
    sens = [95, 99, 90, 99, 99, 99, 80]  # one value per series travels with its series
    got = ad.detect_last_batch(values, offsets, ts, window=window, errors="coerce", keys=names,
                               sensitivity=sens, method=method)
    want = _two_calls(values, offsets, ts, window, names, sensitivity=sens, method=method)
    _assert_same(got, want)
    np.testing.assert_array_equal(got.offsets, offsets)  # offsets of the given series, not the trimmed ones
    assert got.valid.tolist().count(False) >= 2  # the invalid series are there, with their errors
    if window == "suggested":
        assert got.suggested_window[0] < np.diff(offsets)[0]  # the seasonal series was trimmed


def test_suggested_window_changes_a_verdict_only_through_trimming() -> None:
    values, offsets, ts, names = _batch()
    whole = ad.detect_last_batch(values, offsets, ts, errors="coerce")
    got = ad.detect_last_batch(values, offsets, ts, window="suggested", errors="coerce")
    lens = np.diff(offsets)
    untouched = (whole.suggested_window >= lens) & whole.valid
    assert untouched.any() and (~untouched).any()
    np.testing.assert_array_equal(got.expected_value[untouched], whole.expected_value[untouched])
    # the error labels name series by their index in the given batch
    assert any("(series 4)" in m for m in got.error_message if m)


def test_window_none_is_today() -> None:
    values, offsets, ts, _ = _batch()
    _assert_same(
        ad.detect_last_batch(values, offsets, ts, window=None, errors="coerce"),
        ad.detect_last_batch(values, offsets, ts, errors="coerce"),
    )


def test_window_raise_stops_at_the_first_invalid_series() -> None:
    values, offsets, ts, names = _batch()
    with pytest.raises(InvalidSeries, match="at least 12 points.*'too short'"):
        ad.detect_last_batch(values, offsets, ts, window="suggested", keys=names)


def test_single_series_window() -> None:
    values, offsets, ts, _ = _batch()
    x, t = values[: offsets[1]], ts[: offsets[1]]
    got = ad.detect_last(x, t, window="suggested")
    first = ad.detect_last(x, t)
    tail = ad.detect_last(x[-first.suggested_window :], t[-first.suggested_window :])
    assert (got.expected_value, got.is_anomaly, got.upper_margin) == (
        tail.expected_value, tail.is_anomaly, tail.upper_margin
    )


@pytest.mark.parametrize("window", [0, -3, 2.5, True, "all"])
def test_window_refuses_what_is_not_a_window(window: Any) -> None:
    values, offsets, ts, _ = _batch()
    with pytest.raises(BadArgument, match="'window' field"):
        ad.detect_last_batch(values, offsets, ts, window=window)


def test_window_groups_share_the_largest_suggested_window() -> None:
    values, offsets, ts, _ = _batch()
    # two value columns of one key ("k"): the seasonal hourly series and a flat one on its last timestamps
    x1 = values[offsets[0] : offsets[1]]
    x2 = np.random.default_rng(3).normal(50, 1, 250)
    t = ts[offsets[0] : offsets[1]]
    x, tt, offs = np.r_[x1, x2], np.r_[t, t[-250:]], np.array([0, 300, 550])
    alone = ad.detect_last_batch(x, offs, tt, window="suggested")
    assert alone.suggested_window[0] != alone.suggested_window[1]
    shared = int(alone.suggested_window.max())
    assert shared < 250  # both columns are judged on the larger window, within their history
    grouped = ad.detect_last_batch(x, offs, tt, window="suggested", window_groups=["k", "k"])
    want = ad.detect_last_batch(np.r_[x1[-shared:], x2[-shared:]], [0, shared, 2 * shared],
                                np.r_[t[-shared:], t[-shared:]])
    np.testing.assert_array_equal(grouped.expected_value, want.expected_value)
    np.testing.assert_array_equal(grouped.upper_margin, want.upper_margin)
    assert (grouped.expected_value != alone.expected_value).any()
    with pytest.raises(BadArgument, match="'window_groups'"):
        ad.detect_last_batch(x, offs, tt, window="suggested", window_groups=["k"])
