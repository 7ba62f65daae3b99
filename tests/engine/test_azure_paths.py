"""Every path of the Azure model: ESD kernel, period detection, filling, SR, spline, V3, last mode."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ad_pipeline as ad
from ad_pipeline.engine.azure.difference import adf_max_lag, adf_pvalue, difference_order, kpss_statistic
from ad_pipeline.engine.azure.esd import esd, lambdas, merge
from ad_pipeline.engine.azure.period import detect_period

RNG = np.random.default_rng(7)


def _naive_esd(z: np.ndarray, k_max: int) -> tuple[int, int]:
    """O(n^2) reference: per step the median/MAD/mean/std of the remaining list (float32)."""
    z32 = z.astype(np.float32)
    asc = z32[np.argsort(z32, kind="stable")]
    counts = []
    for upper in (True, False):
        lst = asc[::-1] if upper else asc
        best = 0
        for k in range(k_max):
            rest = lst[k:]
            r = len(rest)
            if r < 3:
                break
            med = np.median(rest)
            sigma = max(float(np.median(np.abs(rest - med))) / 0.6744898, 1e-8)
            mean = float(np.mean(rest.astype(np.float64)))
            std = max(float(np.std(rest.astype(np.float64))), 1e-8)
            v = float(lst[k])
            sr = (v - med) / sigma if upper else (med - v) / sigma
            sc = (v - mean) / std if upper else (mean - v) / std
            if sr > lambdas(r)[r] or sc > lambdas(r)[r]:
                best = k + 1
        counts.append(best)
    return counts[0], counts[1]


@pytest.mark.parametrize("seed", range(6))
def test_esd_kernel_matches_the_naive_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 120))
    z = np.round(rng.normal(size=n), 1)  # ties on purpose
    z[rng.choice(n, 4, replace=False)] += rng.choice([-1, 1], 4) * 6
    up, lo = esd(z, n // 2 - 1)
    assert (len(up), len(lo)) == _naive_esd(z, n // 2 - 1)


def test_esd_upper_ties_put_the_highest_index_first() -> None:
    z = np.array([0.0] * 10 + [1.0, 0.2, 0.1, 0.3, 0.1, 0.2, 0.0, 0.1, 1.0, 0.2])
    up, _ = esd(z, 5)
    assert up[:2].tolist() == [18, 10]


def test_merge_keys_prefer_lists_that_agree() -> None:
    # element 7 is rank 1 of detector 0 and rank 0 of detector 1 -> key 1; element 3 key 0
    out = merge([np.array([3, 7]), np.array([7, 9])], n=10, k_max=3)
    assert out.tolist() == [3, 7, 9]


@pytest.mark.parametrize(
    ("granularity", "p", "expected"),
    [("daily", 7, 7), ("hourly", 24, 168), ("monthly", 12, 12), ("weekly", 4, 12)],
)
def test_simple_period_and_standard_period_replacement(granularity: str, p: int, expected: int) -> None:
    n = 3 * expected + 10
    x = 10 + np.sin(2 * np.pi * np.arange(n) / p) + 0.05 * RNG.normal(size=n)
    assert detect_period(x, granularity, 1) == expected


def test_spectrum_period_without_granularity() -> None:
    n = 400
    x = 5 + np.sin(2 * np.pi * np.arange(n) / 10) + 0.05 * RNG.normal(size=n)
    assert detect_period(x, "none", 1) == 10


def test_no_period_in_noise() -> None:
    assert detect_period(RNG.normal(size=300), "daily", 1) == 0


RELEASE_PERIODS = json.loads((Path(__file__).parent / "data" / "release_periods.json").read_text())["cases"]


@pytest.mark.parametrize("case", RELEASE_PERIODS, ids=lambda c: f"{c['granularity']}-{len(c['values'])}")
def test_period_equals_the_release_on_recorded_random_series(case: dict) -> None:
    # periods the open-source release printed for random series (short, noisy, spiky, counts);
    # the first 14 need its float32 running median, bucket step and GCV to come out the same
    x = np.asarray(case["values"], dtype=np.float64)
    assert detect_period(x, case["granularity"], case["custom_interval"]) == case["period"]


def _weekly_with_gaps() -> tuple[np.ndarray, np.ndarray]:
    n = 70
    x = 100 + 10 * np.sin(2 * np.pi * np.arange(n) / 7) + RNG.normal(size=n)
    x[40] += 60
    ts = np.datetime64("2024-01-01") + np.arange(n) * np.timedelta64(1, "D")
    keep = np.ones(n, dtype=bool)
    keep[[10, 11, 25]] = False
    return x[keep], ts[keep]


@pytest.mark.parametrize("mode", ["auto", "previous", "linear", "fixed", "zero", "notFill"])
def test_every_fill_mode_runs_and_stays_aligned(mode: str) -> None:
    x, ts = _weekly_with_gaps()
    kw = {"impute_fixed_value": 100.0} if mode == "fixed" else {}
    r = ad.detect_entire(x, ts, granularity="daily", impute_mode=mode, sensitivity=95, **kw)
    assert len(r.expected_values) == len(x) and np.isfinite(r.expected_values).all()
    assert bool(r.is_anomaly[37])  # index 40 of the grid is 37 of the given points
    assert r.period == 7


def test_fixed_fill_value_takes_part_in_the_model() -> None:
    x, ts = _weekly_with_gaps()
    a = ad.detect_entire(x, ts, granularity="daily", impute_mode="fixed", impute_fixed_value=100.0)
    b = ad.detect_entire(x, ts, granularity="daily", impute_mode="fixed", impute_fixed_value=1e4)
    assert not np.allclose(a.expected_values, b.expected_values)


def test_spectral_residual_flags_a_spike_in_minutely_data() -> None:
    n = 600
    x = 50 + RNG.normal(size=n)
    x[300] = 90
    ts = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "m")
    r = ad.detect_entire(x, ts, granularity="minutely", period=0)
    assert r.period == 0 and bool(r.is_positive_anomaly[300])
    last = ad.detect_last(x[:301], ts[:301], granularity="minutely", period=0)
    assert last.is_anomaly and last.is_positive_anomaly


def test_dynamic_path_and_last_mode_agree_on_a_final_spike() -> None:
    x = 20 + RNG.normal(size=60)
    x[-1] = 45
    e = ad.detect_entire(x, period=0)
    last = ad.detect_last(x, period=0)
    assert bool(e.is_anomaly[-1]) and last.is_anomaly
    assert last.suggested_window == 29


def test_random_walk_is_differenced_and_noise_is_not() -> None:
    walk = np.cumsum(RNG.normal(size=300))
    assert difference_order(walk)[0] == 1
    assert difference_order(RNG.normal(size=300))[0] == 0


def test_fast_adf_matches_statsmodels_with_the_release_lag_cap() -> None:
    from statsmodels.tsa.stattools import adfuller

    for n in (14, 20, 30, 250, 900):
        x = np.cumsum(RNG.normal(size=n)) + 0.2 * RNG.normal(size=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = adfuller(x, maxlag=adf_max_lag(n), autolag="AIC")[1]
        assert adf_pvalue(x) == pytest.approx(ref, rel=1e-6, abs=1e-9)
    assert [adf_max_lag(n) for n in (12, 20, 24, 25, 100)] == [3, 7, 9, 9, 12]


def test_kpss_statistic_matches_statsmodels() -> None:
    from statsmodels.tsa.stattools import kpss

    for n in (30, 300):
        x = np.cumsum(RNG.normal(size=n)) * 0.1 + RNG.normal(size=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = kpss(x, regression="c", nlags="auto")[0]
        assert kpss_statistic(x) == pytest.approx(ref, rel=1e-12)


RELEASE_DIFFERENCING = json.loads((Path(__file__).parent / "data" / "release_differencing.json").read_text())["cases"]


@pytest.mark.parametrize("case", RELEASE_DIFFERENCING, ids=lambda c: f"n{len(c['values'])}-d{c['delta']}")
def test_differencing_order_equals_the_release_on_recorded_random_series(case: dict) -> None:
    # orders the release chose (arch's ADF and KPSS on the padded differences); the first 25
    # differ under statsmodels' defaults or when the unpadded differences are tested
    assert difference_order(np.asarray(case["values"], dtype=np.float64))[0] == case["delta"]


@pytest.mark.parametrize("version", ["V2", "V3"])
def test_v3_margins_are_consistent_with_flags(version: str) -> None:
    x, ts = _weekly_with_gaps()
    r = ad.detect_entire(x, ts, granularity="daily", boundary_version=version, sensitivity=90)
    outside = (x > r.upper_boundaries) | (x < r.lower_boundaries)
    assert (r.is_anomaly == outside).all()
    assert bool(r.is_anomaly[37]) and r.severity[37] > 0
    assert (r.severity[~r.is_anomaly] == 0).all()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=12, max_size=60),
    st.sampled_from([None, "daily", "minutely"]),
    st.sampled_from(["V1", "V3"]),
)
def test_flags_agree_with_boundaries(values: list[float], granularity: str | None, version: str) -> None:
    x = np.array(values)
    ts = None
    if granularity is not None:
        step = np.timedelta64(1, "D" if granularity == "daily" else "m")
        ts = np.datetime64("2024-01-01T00:00") + np.arange(len(x)) * step
    r = ad.detect_entire(x, ts, granularity=granularity, boundary_version=version)
    assert (r.lower_boundaries <= r.expected_values + 1e-9 * np.abs(r.expected_values) + 1e-12).all()
    assert (r.expected_values <= r.upper_boundaries + 1e-9 * np.abs(r.expected_values) + 1e-12).all()
    outside = (x > r.upper_boundaries) | (x < r.lower_boundaries)
    assert not (r.is_anomaly & ~outside).any()
    assert not (r.is_positive_anomaly & r.is_negative_anomaly).any()
    # the original keeps up to K = ceil(n * ratio) per direction (recorded cases flag 16 with K = 8)
    assert r.is_anomaly.sum() <= 2 * np.ceil(0.25 * len(x))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-20, 20), min_size=3, max_size=50))
def test_sorted_mad_equals_numpys(values: list[int]) -> None:
    from ad_pipeline.engine.azure.esd import _mad_sorted

    z = (np.array(values) / 7).astype(np.float32)
    assert _mad_sorted(np.sort(z)) == np.median(np.abs(z - np.median(z)))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=3, max_size=40))
def test_last_mode_puts_the_last_point_first_among_equal_values(values: list[int]) -> None:
    from ad_pipeline.engine.azure.esd import direction_orders

    z = np.array(values, dtype=np.float32)
    n = len(z)
    key = np.arange(n)
    key[n - 1] = -1
    upper, lower = direction_orders(z, last=True)
    assert lower.tolist() == np.lexsort((key, z)).tolist()
    tie_first_up = upper[np.flatnonzero(z[upper] == z[n - 1])[0]]
    assert tie_first_up == n - 1


@pytest.mark.parametrize("level", [1e92, -3e99, 0.1])
def test_constant_series_have_no_period_and_raise_no_warning(level: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # beyond float32's range the release's float32 steps would overflow
        for granularity in ("hourly", "daily", "minutely"):
            assert detect_period(np.full(400, level), granularity, 1) == 0


def test_auto_fill_keeps_observed_values_and_flag_directions_follow_them():
    """The short-gap spline returns observed points only up to rounding: on a series spanning 77
    orders of magnitude that rounding rewrote small values entirely, and flags pointed the wrong way."""
    from ad_pipeline.engine.azure.impute import fill_auto

    rng = np.random.default_rng(166)
    grid = 337
    observed = np.sort(rng.choice(grid, 280, replace=False))
    x = np.full(grid, np.nan)
    x[observed] = 10.0 ** rng.uniform(-39, 38, len(observed))
    filled = fill_auto(x, 27)
    assert np.array_equal(filled[observed], x[observed])
    ts = np.datetime64("1998-10-01T04:45:50") + observed.astype("timedelta64[W]") * 5
    r = ad.detect_entire(x[observed], timestamps=ts, granularity="weekly", custom_interval=5, period=27)
    v, e = x[observed], r.expected_values
    assert r.is_anomaly.any()
    assert not (r.is_positive_anomaly & (v < e)).any() and not (r.is_negative_anomaly & (v > e)).any()
    assert np.array_equal(r.is_anomaly, r.is_positive_anomaly | r.is_negative_anomaly)
