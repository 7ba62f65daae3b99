"""Change-point detection: quality on synthetic series, missing points, edge cases, parameters."""

from __future__ import annotations

import numpy as np
import pytest

import ad_pipeline as ad
from ad_pipeline.engine.changepoint import DEFAULT_THRESHOLD, default_window
from benchmarks import changepoints as bench_cp


def _step(n: int = 200, at: int = 100, size: float = 8.0, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=n)
    x[at:] += size
    return x


def test_f1_on_synthetic_level_shifts_and_trend_changes() -> None:
    series = bench_cp.make_series(40, seed=2024)
    assert len(series) >= 30
    assert all(np.diff(truth).min() >= 60 for _, truth, _ in series if len(truth) > 1)
    s = bench_cp.score(series)
    assert s["f1"] >= 0.9, s


def test_f1_with_missing_points() -> None:
    rng = np.random.default_rng(5)
    series = []
    for x, truth, params in bench_cp.make_series(30, seed=77):
        x = x.copy()
        x[rng.random(len(x)) < 0.1] = np.nan
        series.append((x, truth, params))
    s = bench_cp.score(series)
    assert s["f1"] >= 0.9, s


def test_match_counts_each_true_change_once() -> None:
    assert bench_cp.match(np.array([98, 100, 103]), np.array([100])) == 1
    assert bench_cp.match(np.array([94]), np.array([100])) == 0
    assert bench_cp.match(np.array([95, 165]), np.array([100, 160])) == 2


def test_single_level_shift_found_exactly() -> None:
    r = ad.detect_change_points(_step(), period=0)
    assert np.flatnonzero(r.is_change_point).tolist() == [100]
    assert r.confidence_scores[100] > 0.99
    assert r.period == 0


def test_trend_change_found_within_tolerance() -> None:
    rng = np.random.default_rng(3)
    x = np.r_[np.zeros(150), np.arange(1, 151) * 0.3] + rng.normal(size=300)
    found = np.flatnonzero(ad.detect_change_points(x, period=0).is_change_point)
    assert len(found) == 1 and abs(found[0] - 150) <= 5


def test_white_noise_has_no_change_point() -> None:
    rng = np.random.default_rng(4)
    for _ in range(5):
        assert not ad.detect_change_points(rng.normal(size=500), period=0).is_change_point.any()


def test_seasonal_series_period_detected_and_removed() -> None:
    rng = np.random.default_rng(5)
    n = 24 * 30
    x = 5 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(size=n)
    x[400:] += 6
    r = ad.detect_change_points(x, granularity="hourly")
    assert r.period > 0 and r.period % 24 == 0
    assert np.flatnonzero(r.is_change_point).tolist() == [400]


def test_scale_and_offset_do_not_matter() -> None:
    x = _step(seed=6)
    base = ad.detect_change_points(x, period=0)
    for scale, offset in ((1e-80, 0.0), (1e80, -3e81), (1.0, 1e9)):
        r = ad.detect_change_points(x * scale + offset, period=0)
        np.testing.assert_array_equal(r.is_change_point, base.is_change_point)


# --------------------------------------------------------------------------- missing points


def test_nan_points_filled_never_reported_and_outputs_aligned() -> None:
    x = _step(seed=7)
    x[[10, 50, 100, 101, 150]] = np.nan  # the change itself is missing
    r = ad.detect_change_points(x, period=0)
    assert len(r.is_change_point) == len(x) == len(r.confidence_scores)
    nan = np.isnan(x)
    assert not r.is_change_point[nan].any()
    assert (r.confidence_scores[nan] == 0).all()
    found = np.flatnonzero(r.is_change_point)
    assert len(found) == 1 and abs(found[0] - 100) <= 3  # reported at a neighbouring observed point


def test_missing_grid_points_from_timestamps() -> None:
    x = _step(seed=8)
    ts = np.datetime64("2024-01-01T00:00") + np.arange(len(x)) * np.timedelta64(1, "h")
    keep = np.ones(len(x), dtype=bool)
    keep[[20, 21, 22, 99, 100, 140]] = False  # gaps on the grid, the change point among them
    r = ad.detect_change_points(x[keep], ts[keep], granularity="hourly", period=0)
    assert len(r.is_change_point) == keep.sum()
    found = np.flatnonzero(r.is_change_point)
    assert len(found) == 1 and abs(ts[keep][found[0]] - ts[100]) <= np.timedelta64(3, "h")
    assert np.isfinite(r.confidence_scores).all()


def test_mostly_missing_series_does_not_crash() -> None:
    x = np.full(300, np.nan)
    x[::20] = np.r_[np.zeros(8), np.full(7, 5.0)]
    r = ad.detect_change_points(x, period=0)
    assert not r.is_change_point[np.isnan(x)].any()
    assert ((r.confidence_scores >= 0) & (r.confidence_scores <= 1)).all()


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("value", [0.0, 7.5, -1e90, 1e-90])
def test_constant_series(value: float) -> None:
    r = ad.detect_change_points(np.full(100, value))
    assert not r.is_change_point.any()
    assert (r.confidence_scores == 0).all()
    assert r.period == 0


def test_straight_line_has_no_change_point() -> None:
    r = ad.detect_change_points(3.0 + 0.25 * np.arange(100), period=0)
    assert not r.is_change_point.any()


def test_short_series_of_12_points() -> None:
    assert default_window(12) == 3
    rng = np.random.default_rng(9)
    x = np.r_[np.zeros(6), np.full(6, 10.0)] + 0.3 * rng.normal(size=12)
    r = ad.detect_change_points(x)
    assert r.is_change_point.shape == (12,) and r.confidence_scores.shape == (12,)
    assert np.flatnonzero(r.is_change_point).tolist() == [6]
    # the first and last MIN_SIDE points cannot be tested
    assert (r.confidence_scores[:3] == 0).all() and (r.confidence_scores[-2:] == 0).all()


def test_single_spike_is_not_a_change_point() -> None:
    x = np.random.default_rng(10).normal(size=200)
    x[80] = 40.0
    assert not ad.detect_change_points(x, period=0).is_change_point.any()


def test_noiseless_step() -> None:
    x = np.r_[np.zeros(50), np.ones(50)]
    r = ad.detect_change_points(x, period=0)
    assert np.flatnonzero(r.is_change_point).tolist() == [50]


def test_too_short_series_is_refused() -> None:
    with pytest.raises(ad.errors.InvalidSeries, match="at least 12"):
        ad.detect_change_points(np.arange(11.0))


# --------------------------------------------------------------------------- parameters


def test_default_threshold_and_confidence_range() -> None:
    rng = np.random.default_rng(11)
    x = np.cumsum(rng.normal(size=400))  # a random walk: some change points, many candidates
    r = ad.detect_change_points(x, period=0)
    assert ((r.confidence_scores >= 0) & (r.confidence_scores <= 1)).all()
    np.testing.assert_array_equal(r.is_change_point, r.confidence_scores > DEFAULT_THRESHOLD)
    assert r.is_change_point.any()


def test_threshold_a_higher_threshold_reports_a_subset() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=600)
    for at, size in ((100, 1.2), (250, 4.0), (400, 8.0)):  # weak, middling and strong shifts
        x[at:] += size
    counts = []
    previous: set[int] | None = None
    for thr in (0.05, 0.5, 0.9, 0.999999):
        r = ad.detect_change_points(x, period=0, threshold=thr)
        found = set(np.flatnonzero(r.is_change_point).tolist())
        np.testing.assert_array_equal(r.is_change_point, r.confidence_scores > thr)
        if previous is not None:
            assert found <= previous
        previous = found
        counts.append(len(found))
    assert counts[0] > counts[-1]
    assert 400 in set(np.flatnonzero(ad.detect_change_points(x, period=0, threshold=0.99).is_change_point))


def test_stable_trend_window_longer_finds_gradual_changes() -> None:
    hits = {5: 0, 40: 0}
    for seed in range(10):
        rng = np.random.default_rng(100 + seed)
        x = np.r_[np.zeros(200), np.arange(1, 201) * 0.12] + rng.normal(size=400)
        for w in hits:
            found = np.flatnonzero(ad.detect_change_points(x, period=0, stable_trend_window=w).is_change_point)
            hits[w] += bool(np.any(np.abs(found - 200) <= 8))
    # the window is the stable length a change needs (segments of at least window // 3 points), so a
    # short window no longer blinds the detector to a gradual change (the old two-window test was)
    assert hits[40] >= 6 and hits[5] >= 6, hits


def test_stable_trend_window_shorter_separates_close_changes() -> None:
    x = _step(n=300, at=100, size=8.0, seed=13)
    x[125:] -= 8.0  # a 25-point plateau
    short = np.flatnonzero(ad.detect_change_points(x, period=0, stable_trend_window=10).is_change_point)
    # segments need window // 3 points: a window of 120 cannot hold the 25-point plateau
    long = np.flatnonzero(ad.detect_change_points(x, period=0, stable_trend_window=120).is_change_point)
    assert short.tolist() == [100, 125]
    assert long.tolist() != [100, 125] and (len(long) <= 1 or np.diff(long).min() >= 120 // 3)


def test_explicit_period_is_returned_and_used() -> None:
    rng = np.random.default_rng(14)
    n = 7 * 40
    x = 4 * np.tile([0, 1, 3, 2, -1, -2, -3.0], 40) + rng.normal(size=n)
    x[150:] += 6
    r = ad.detect_change_points(x, period=7)
    assert r.period == 7
    assert np.flatnonzero(r.is_change_point).tolist() == [150]


def test_batch_per_series_parameters() -> None:
    a = _step(seed=15)
    b = _step(seed=16, at=60)
    res = ad.detect_change_points_batch(
        np.r_[a, b], [0, 200, 400], stable_trend_window=[10, 30], threshold=[0.5, 0.999999], period=0
    )
    assert np.flatnonzero(res.is_change_point).tolist() == [100, 260]
    assert res.period.tolist() == [0, 0]


# --------------------------------------------------------------------------- seasonal data


def _seasonal_with_spikes(n: int, period: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 10 * np.sin(2 * np.pi * t / period) + 3 * np.cos(4 * np.pi * t / period) + rng.normal(size=n)
    spikes = rng.choice(n, size=n // 100, replace=False)
    x[spikes] += rng.choice([-1.0, 1.0], len(spikes)) * rng.uniform(10, 40, len(spikes))
    return x


@pytest.mark.parametrize(("granularity", "period", "seed"), [("hourly", 24, 20), ("daily", 7, 21), ("minutely", 12, 22)])
def test_clean_seasonal_series_with_spikes_has_no_change_point(granularity: str, period: int, seed: int) -> None:
    for k in range(3):
        x = _seasonal_with_spikes(1500, period, seed * 10 + k)
        ts = np.datetime64("2024-01-01") + np.arange(len(x)) * np.timedelta64(
            {"hourly": 60, "daily": 1440, "minutely": 5}[granularity], "m"
        )
        r = ad.detect_change_points(x, ts, granularity=granularity, custom_interval=5 if granularity == "minutely" else 1)
        assert not r.is_change_point.any(), np.flatnonzero(r.is_change_point)


def test_shift_of_4_sigma_after_deseasonalising_found_within_5_points() -> None:
    for seed in range(5):
        x = _seasonal_with_spikes(24 * 40, 24, 30 + seed)
        at = 300 + 97 * seed
        x[at:] += 4.0  # 4 noise sigmas, far below the daily swing of 10
        found = np.flatnonzero(ad.detect_change_points(x, granularity="hourly").is_change_point)
        assert len(found) == 1 and abs(found[0] - at) <= 5, (seed, found)


def test_variance_change_found_and_the_noisier_part_not_cut_up() -> None:
    found = other = 0
    for seed in range(10):
        x = np.random.default_rng(40 + seed).normal(size=400)
        x[200:] *= 3.0 if seed % 2 else 1 / 3.0  # the noise triples, or drops to a third
        cps = np.flatnonzero(ad.detect_change_points(x, period=0).is_change_point)
        found += bool(np.any(np.abs(cps - 200) <= 10))
        other += int(np.sum(np.abs(cps - 200) > 10))
    assert found >= 9 and other <= 1, (found, other)
