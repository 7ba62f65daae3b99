"""The seed example of the Azure documentation (monthly, 48 points, sensitivity 95)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import ad_pipeline as ad
from ad_pipeline.rest.request import parse_request

SEEDS = Path("/work/shared/seeds")
if not SEEDS.is_dir():  # a checkout elsewhere: the seeds sit beside the repository
    SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


def _seed_request() -> dict:
    """The first JSON request body of the 'Anomaly Detector' API page (the 48-point example)."""
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text()
        for m in re.finditer(r"^\{\n", text, flags=re.M):
            try:
                body, _ = json.JSONDecoder().raw_decode(text[m.start() :])
            except json.JSONDecodeError:
                continue
            if isinstance(body, dict) and len(body.get("series", [])) == 48:
                return body
    pytest.skip("seed documents not found")


@pytest.fixture(scope="module")
def seed() -> tuple[np.ndarray, list[str], dict]:
    values, ts, kwargs = parse_request(_seed_request())
    assert kwargs == {"max_anomaly_ratio": 0.25, "sensitivity": 95, "granularity": "monthly"}
    return values, ts, kwargs


def test_last_detect_matches_the_documented_response(seed) -> None:
    values, ts, kwargs = seed
    r = ad.detect_last(values, ts, **kwargs)
    assert r.period == 12
    assert not r.is_anomaly
    assert r.expected_value == pytest.approx(809.23, rel=0.01)
    assert r.upper_margin == pytest.approx(40.46, rel=0.02)
    assert r.lower_margin == pytest.approx(40.46, rel=0.02)
    assert r.suggested_window == 49


def test_entire_detect_flags_only_index_25(seed) -> None:
    values, ts, kwargs = seed
    r = ad.detect_entire(values, ts, **kwargs)
    assert r.period == 12
    assert np.flatnonzero(r.is_anomaly).tolist() == [25]
    assert bool(r.is_positive_anomaly[25]) and not r.is_negative_anomaly.any()
    # lower boundaries are clipped at the series minimum
    assert r.lower_boundaries.min() == pytest.approx(values.min())


@pytest.mark.parametrize(("sensitivity", "count"), [(100, 10), (95, 1), (0, 0)])
def test_sensitivity_only_removes_candidates(seed, sensitivity: int, count: int) -> None:
    values, ts, kwargs = seed
    r = ad.detect_entire(values, ts, **{**kwargs, "sensitivity": sensitivity})
    assert int(r.is_anomaly.sum()) == count


def test_without_granularity_no_period_and_no_anomaly(seed) -> None:
    values, _, kwargs = seed
    r = ad.detect_entire(values, **{**kwargs, "granularity": None})
    assert r.period == 0
    assert not r.is_anomaly.any()
