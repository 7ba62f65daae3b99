"""Compiled helper kernels against the numpy code they replace."""

from __future__ import annotations

import numpy as np
import pytest

from ad_pipeline.engine.kernels import centred_median


def _reference(v: np.ndarray, h: int) -> np.ndarray:
    n = len(v)
    return np.array([np.median(v[max(0, t - h) : min(n - 1, t + h) + 1]) for t in range(n)])


@pytest.mark.parametrize(
    ("n", "h"), [(1, 0), (1, 3), (2, 3), (5, 1), (12, 12), (50, 25), (51, 25), (300, 12), (400, 84), (100, 0)]
)
def test_centred_median_equals_numpy(n: int, h: int) -> None:
    rng = np.random.default_rng(n * 1000 + h)
    v = rng.normal(size=n)
    v[::5] = 0.25  # ties
    assert np.array_equal(centred_median(v, h), _reference(v, h))


def test_centred_median_constant_and_huge() -> None:
    assert np.array_equal(centred_median(np.full(20, 7.0), 4), np.full(20, 7.0))
    v = np.array([1e300, -1e300, 1e300, 3.0, -1e300])
    assert np.array_equal(centred_median(v, 1), _reference(v, 1))
