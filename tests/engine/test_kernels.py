"""Compiled helper kernels against plain-Python statements of what they compute."""

from __future__ import annotations

import bisect
from array import array

import numpy as np
import pytest

from ad_pipeline.engine.kernels import running_median32


def _reference(data: np.ndarray, window: int) -> np.ndarray:
    """The release's running median step by step: a sorted float32 window updated by bisection;
    at the ends the leaving value is looked up as float64."""
    n = len(data)
    w = window // 2 * 2 + 1
    h = w // 2
    ans = array("f", data.tolist())
    if n < w:
        return np.array(ans, dtype=np.float32)
    buf = array("f", [0.0] * w)

    def median(m: int) -> float:
        return buf[m // 2] if m % 2 else float(np.float32(np.float32(buf[m // 2 - 1]) + np.float32(buf[m // 2])) / np.float32(2))

    for i in range(w):
        buf[:i + 1] = array("f", sorted(list(buf[:i]) + [ans[i]], key=float))  # insert, as bisection would
        if i >= h:
            ans[i - h] = median(i + 1)
    val = array("f", data.tolist())
    for i in range(h + 1, n - h):
        del buf[bisect.bisect_right(buf, val[i - h - 1]) - 1]
        buf.insert(bisect.bisect_right(buf, val[i + h]), val[i + h])
        ans[i] = median(w)
    m = w
    for i in range(n - h, n):
        k = bisect.bisect_right(buf[:m], float(data[i - h - 1])) - 1
        if k < 0:  # Cython wraps index -1 around the whole buffer
            buf[w - 1] = buf[0]
            k = 0
        for q in range(k, m - 1):
            buf[q] = buf[q + 1]
        m -= 1
        ans[i] = median(m)
    return np.array(ans, dtype=np.float32)


@pytest.mark.parametrize(("n", "window"), [(1, 3), (2, 5), (5, 2), (12, 12), (50, 24), (51, 25), (300, 24), (400, 168)])
def test_running_median_follows_the_release(n: int, window: int) -> None:
    rng = np.random.default_rng(n * 1000 + window)
    v = rng.normal(size=n)
    v[::5] = 0.25  # ties
    v[::7] = 0.1  # rounds up to float32: at the ends its predecessor leaves instead
    np.testing.assert_array_equal(running_median32(v, window), _reference(v, window))


def test_running_median_of_exact_values_is_the_window_median() -> None:
    v = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.5, 5.0, 3.0, 5.5])
    h = 2
    want = [np.median(v[max(0, t - h) : t + h + 1]) for t in range(len(v))]
    assert running_median32(v, 4).tolist() == want
    assert running_median32(np.full(20, 7.0), 8).tolist() == [7.0] * 20
