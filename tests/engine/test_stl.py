"""The compiled Azure STL against statsmodels' STL with the same settings (even periods) and
against R's stl as ported by ``rstl``, the STL the release runs (odd periods: their low-pass
window is the period itself, which statsmodels refuses)."""

from __future__ import annotations

import numpy as np
import pytest

from ad_pipeline.engine.azure import _stl_kernel
from ad_pipeline.engine.azure.stl import stl, stl_batch, stl_statsmodels

RTOL = 1e-9  # what the port must hold; it is bit-identical in practice


def _series(n: int, period: int, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 10 + 3 * np.sin(2 * np.pi * t / period) + 0.01 * t + rng.normal(size=n)
    x[rng.integers(0, n, size=max(1, n // 40))] += 15  # spikes exercise the robustness weights
    return x * scale


RTOL_RSTL = 1e-7  # rstl sums with numpy's pairwise sum: the robust fits of period 3 drift to ~6e-9


def _assert_close(
    got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...], x: np.ndarray, rtol: float = RTOL
) -> None:
    scale = max(float(np.max(np.abs(x))), 1e-300)
    for g, w, name in zip(got, want, ("trend", "seasonal", "resid"), strict=False):
        err = float(np.max(np.abs(g - w))) / scale
        assert err <= rtol, f"{name}: max relative difference {err:.3g}"


CASES = [
    # (n, period, scale)
    (5, 2, 1.0),  # n = 2p + 1
    (60, 2, 1.0),
    (100, 3, 1.0),
    (15, 7, 1.0),
    (200, 7, 1.0),
    (25, 12, 1.0),
    (49, 12, 1.0),
    (49, 24, 1.0),  # fewer than two cycles per phase at the end
    (1000, 24, 1.0),
    (337, 168, 1.0),
    (1000, 168, 1.0),
    (500, 24, 1e12),
    (500, 24, 1e-12),
    (300, 12, -1e150),
]


def _reference(x: np.ndarray, period: int) -> tuple[np.ndarray, ...]:
    if period % 2 == 0:
        return stl_statsmodels(x, period)
    from rstl import STL

    res = STL(np.asarray(x, dtype=np.float64), period, "periodic", robust=True)
    return res.trend, res.seasonal, res.remainder


@pytest.mark.parametrize(("n", "period", "scale"), CASES)
def test_matches_the_reference(n: int, period: int, scale: float) -> None:
    for seed in range(3):
        x = _series(n, period, seed, scale)
        _assert_close(stl(x, period), _reference(x, period), x, RTOL if period % 2 == 0 else RTOL_RSTL)


def test_low_pass_window_is_r_nextodd_of_the_period() -> None:
    # R's stl (and so the release) smooths with the period itself when it is odd
    assert [_stl_kernel.azure_windows(100, p)[2] for p in (7, 12, 3, 24)] == [7, 13, 3, 25]


@pytest.mark.parametrize("period", [7, 8])
@pytest.mark.parametrize("x", [np.full(50, 3.5), np.zeros(30), np.r_[np.full(40, 2.0), 9.0]])
def test_degenerate_series(x: np.ndarray, period: int) -> None:
    got = stl(x, period)
    _assert_close(got, _reference(x, period), x, RTOL if period % 2 == 0 else RTOL_RSTL)
    assert np.all(np.isfinite(got[0])) and np.all(np.isfinite(got[1]))


def test_general_kernel_other_settings() -> None:
    """The port is the general algorithm: other windows, degrees and jumps also match."""
    from statsmodels.tsa.seasonal import STL

    x = _series(300, 12, 7)
    for ns, isdeg, nsjump, robust in [(7, 1, 1, False), (13, 0, 2, True), (9, 1, 3, True)]:
        for tjump in (1, 4):
            res = STL(
                x, period=12, seasonal=ns, seasonal_deg=isdeg, robust=robust,
                seasonal_jump=nsjump, trend_jump=tjump, low_pass_jump=tjump,
            ).fit(inner_iter=2, outer_iter=3 if robust else 0)
            nt = int(np.ceil(1.5 * 12 / (1 - 1.5 / ns)))
            nt += nt % 2 == 0
            trend = np.empty(300)
            season = np.empty(300)
            _stl_kernel.stl_core(
                x, 12, ns, nt, 13, isdeg, 1, 1, nsjump, tjump, tjump, 2, 3 if robust else 0, trend, season
            )
            np.testing.assert_allclose(trend, res.trend, rtol=0, atol=RTOL * 30)
            np.testing.assert_allclose(season, res.seasonal, rtol=0, atol=RTOL * 30)


@pytest.mark.parametrize("parallel", [False, True])
def test_batch_equals_single_series(parallel: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mixed lengths and periods in one batch (setups shared by runs of equal shape)."""
    import ad_pipeline.engine.azure.stl as stl_mod

    if parallel:
        monkeypatch.setattr(stl_mod, "PARALLEL_MIN_POINTS", 0)
    rng = np.random.default_rng(3)
    shapes = [(100, 12), (30, 7), (1000, 24), (5, 2), (400, 168)] * 3
    parts = [_series(n, p, int(rng.integers(1000))) for n, p in shapes]
    values = np.concatenate(parts)
    offsets = np.r_[0, np.cumsum([n for n, _ in shapes])]
    periods = np.array([p for _, p in shapes])
    trend, seasonal = stl_batch(values, offsets, periods)
    for i, (x, (_, p)) in enumerate(zip(parts, shapes, strict=True)):
        t1, s1, _ = stl(x, p)
        sl = slice(offsets[i], offsets[i + 1])
        assert np.array_equal(trend[sl], t1) and np.array_equal(seasonal[sl], s1)


def test_batch_parallel_path_equals_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    import ad_pipeline.engine.azure.stl as stl_mod

    x = np.concatenate([_series(200, 24, s) for s in range(6)])
    offsets = np.arange(0, 1201, 200)
    periods = np.full(6, 24)
    serial = stl_batch(x, offsets, periods)
    monkeypatch.setattr(stl_mod, "PARALLEL_MIN_POINTS", 0)
    parallel = stl_batch(x, offsets, periods)
    assert np.array_equal(serial[0], parallel[0]) and np.array_equal(serial[1], parallel[1])


def test_empty_batch() -> None:
    trend, seasonal = stl_batch(np.empty(0), [0], np.empty(0, dtype=np.int64))
    assert trend.shape == seasonal.shape == (0,)


@pytest.mark.parametrize(
    ("values", "offsets", "periods", "match"),
    [
        (np.ones(20), [0, 20], [1], "period must be >= 2"),
        (np.ones(5), [0, 5], [7], "at most the series' length"),
        (np.ones(20), [0, 10], [2], "offsets must run from 0"),
        (np.ones(20), [0, 10, 20], [2], "one more entry than periods"),
        (np.r_[np.ones(19), np.nan], [0, 20], [2], "must be finite"),
    ],
)
def test_batch_rejects_bad_layout(values, offsets, periods, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        stl_batch(values, offsets, periods)


def test_batch_from_several_threads_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent calls (a threaded server) get the same numbers; one of them runs in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    import ad_pipeline.engine.azure.stl as stl_mod

    monkeypatch.setattr(stl_mod, "PARALLEL_MIN_POINTS", 0)
    x = np.concatenate([_series(300, 24, s) for s in range(8)])
    offsets = np.arange(0, 2401, 300)
    periods = np.full(8, 24)
    want = stl_batch(x, offsets, periods)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: stl_batch(x, offsets, periods), range(8)))
    for t, s in got:
        assert np.array_equal(t, want[0]) and np.array_equal(s, want[1])
