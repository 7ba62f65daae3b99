"""method="auto": accuracy on the labeled dev sets, calibrated sensitivity, consistent outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import ad_pipeline as ad
from ad_pipeline.engine.auto import documented_false_alarm_rate, threshold

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH_DIR))
from bench_data import BENCH, detect_set, load_scorer, load_set, score_set  # noqa: E402

needs_bench = pytest.mark.skipif(not (BENCH / "score.py").exists(), reason="../shared/bench is not beside the repo")


@pytest.fixture(scope="module")
def sets():
    return {"kpi": load_set("kpi"), "nab": load_set("nab")}


@pytest.fixture(scope="module")
def scorer():
    return load_scorer()


@needs_bench
def test_auto_beats_every_reference_row(sets, scorer):
    flags, _, _ = detect_set(sets["kpi"], method="auto")
    kpi = score_set("kpi", sets["kpi"], flags, scorer)
    flags, _, _ = detect_set(sets["nab"], method="auto")
    nab = score_set("nab", sets["nab"], flags, scorer)
    assert kpi["f1"] > 0.38, kpi
    assert nab["f1"] > 0.83, nab
    assert nab["windows_hit"] >= 51, nab
    assert nab["outside_per_series"] < 148, nab


@needs_bench
def test_sensitivity_is_monotone_and_calibrated(sets):
    counts = {"kpi": [], "nab": []}
    for s in (50, 80, 95, 99):
        for name in counts:
            flags, _, _ = detect_set(sets[name], method="auto", sensitivity=s)
            counts[name].append(sum(int(f.sum()) for f in flags))
        clean = [x for x in sets["nab"] if x.name.startswith("artificialNoAnomaly/")]
        flags, _, points = detect_set(clean, method="auto", sensitivity=s)
        rate = sum(int(f.sum()) for f in flags) / points
        assert rate <= 2 * documented_false_alarm_rate(s), (s, rate)
    for name, c in counts.items():
        assert all(a < b for a, b in zip(c, c[1:], strict=False)), (name, c)


def test_threshold_mapping_is_documented():
    assert threshold(99) < threshold(95) < threshold(80) < threshold(50)
    assert documented_false_alarm_rate(99) == pytest.approx(10 ** (-7 + 2.97))


def test_gaussian_false_alarm_rate_matches_documentation():
    rng = np.random.default_rng(7)
    n_series, n = 200, 1000
    x = rng.normal(size=(n_series, n)) + 50
    res = ad.detect_entire_batch(x.ravel(), np.arange(n_series + 1) * n, method="auto", sensitivity=99)
    rate = res.is_anomaly.mean()
    assert rate <= 2 * documented_false_alarm_rate(99), rate


@pytest.mark.parametrize("kind", ["spike", "dip", "level_shift", "flatline"])
def test_auto_finds_injected_anomalies(kind):
    rng = np.random.default_rng(3)
    t = np.arange(24 * 30)
    x = 100 + 10 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, len(t))
    at = 500
    if kind == "spike":
        x[at] += 15
    elif kind == "dip":
        x[at] -= 15
    elif kind == "level_shift":
        x[at:] += 12
    else:
        x[at : at + 48] = 100.0
    ts = np.arange(len(t)).astype("datetime64[h]")
    r = ad.detect_entire(x, ts, method="auto")
    assert r.period == 24
    hits = np.flatnonzero(r.is_anomaly)
    assert np.any(np.abs(hits - at) <= 3), (kind, hits[:20])
    assert len(hits) <= 60, (kind, len(hits))


def test_auto_outputs_are_consistent():
    rng = np.random.default_rng(11)
    x = np.cumsum(rng.normal(size=600)) + rng.standard_t(2, size=600)
    x[::97] = np.nan
    r = ad.detect_entire(x, method="auto", max_anomaly_ratio=0.05)
    obs = ~np.isnan(x)
    assert r.is_anomaly.sum() <= np.ceil(0.05 * len(x))
    assert not r.is_anomaly[~obs].any()
    flagged, normal = r.is_anomaly & obs, ~r.is_anomaly & obs
    assert np.all((x[flagged] > r.upper_boundaries[flagged]) | (x[flagged] < r.lower_boundaries[flagged]))
    assert np.all((x[normal] <= r.upper_boundaries[normal]) & (x[normal] >= r.lower_boundaries[normal]))
    assert np.array_equal(r.is_anomaly, r.is_positive_anomaly | r.is_negative_anomaly)
    assert np.all(r.severity[flagged] > 0) and np.all(r.severity[normal] == 0)


def test_auto_last_matches_entire_on_the_last_point():
    rng = np.random.default_rng(5)
    x = 20 + np.sin(np.arange(200) * 2 * np.pi / 24) + rng.normal(0, 0.1, 200)
    x[-1] += 5
    last = ad.detect_last(x, method="auto", period=24)
    entire = ad.detect_entire(x, method="auto", period=24)
    assert last.is_anomaly and last.is_positive_anomaly
    assert last.expected_value == pytest.approx(entire.expected_values[-1])
    assert last.suggested_window == 4 * 24 + 1
