"""The plot: a real PNG of non-trivial size, one panel per series, the marks that matter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import ad_pipeline  # noqa: F401
from ad_pipeline.errors import BadArgument
from ad_pipeline.plot import plot_series

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    ts = pd.date_range("2024-03-01", periods=96, freq="h")
    parts = []
    for i, key in enumerate(["web", "api", "db", "queue"]):
        y = 50 + 10 * np.sin(2 * np.pi * np.arange(96) / 24) + rng.normal(0, 1, 96)
        y[30 + i] += 40
        y[70] -= 35
        parts.append(pd.DataFrame({"service": key, "timestamp": ts, "load": y}))
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=1)


def test_plot_saves_a_png(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib.image

    path = tmp_path / "sub" / "plot.png"
    fig = _frame().anomaly.plot(value="load", by="service", max_series=3, path=path, title="load", period=24)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 400 and img.shape[1] > 800
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["api · load", "db · load", "queue · load"]
    ax = fig.axes[0]
    assert len(ax.lines) >= 2 and ax.collections  # value + expected lines, band and anomaly markers
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"value", "expected", "boundaries", "positive anomaly", "negative anomaly"} <= set(labels)


def test_polars_and_series_plots() -> None:
    df = _frame()
    fig = pl.from_pandas(df).lazy().anomaly.plot(value="load", by="service", max_series=2, period=24)
    assert len(fig.axes) == 2
    s = df[df["service"] == "web"].set_index("timestamp")["load"].sort_index()
    assert len(s.anomaly.plot(period=24).axes) == 1


def test_plot_series_from_arrays(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = np.r_[np.zeros(50), np.ones(50) * 5]
    cp = np.zeros(100, dtype=bool)
    cp[50] = True
    fig = plot_series(
        [{"value": x, "is_anomaly": x > 4, "is_change_point": cp}, {"value": x, "error": "too short"}],
        path=tmp_path / "a.png",
    )
    assert len(fig.axes) == 2
    assert any(abs(line.get_xdata()[0] - 50) < 1e-9 for line in fig.axes[0].lines[1:])  # the change point
    assert "too short" in fig.axes[1].texts[0].get_text()
    with pytest.raises(BadArgument):
        plot_series([])
