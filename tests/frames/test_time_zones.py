"""Time-zone-aware DataFrame columns: a calendar grid is laid on local wall-clock time (DST)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import ad_pipeline  # noqa: F401  (registers df.anomaly)


def _daily_across_dst() -> tuple[pd.DatetimeIndex, np.ndarray]:
    """70 local midnights in Berlin across the March 2024 change (one day of 23 hours in UTC)."""
    local = pd.date_range("2024-02-15", periods=70, freq="D", tz="Europe/Berlin")
    rng = np.random.default_rng(3)
    x = 10 + np.sin(np.arange(70) * 2 * np.pi / 7) + rng.normal(0, 0.1, 70)
    x[50] = 40.0
    return local, x


@pytest.mark.parametrize("frame", ["pandas", "polars"])
def test_daily_local_midnights_across_a_dst_change_are_one_day_apart(frame):
    local, x = _daily_across_dst()
    assert len(set(np.diff(local.tz_convert("UTC").asi8))) == 2  # in UTC the steps are 24 h and 23 h
    naive = pd.DataFrame({"ts": local.tz_localize(None), "v": x})
    aware = pd.DataFrame({"ts": local, "v": x})
    if frame == "polars":
        naive, aware = pl.from_pandas(naive), pl.from_pandas(aware)
    want = naive.anomaly.detect(value="v", timestamp="ts", granularity="daily")
    got = aware.anomaly.detect(value="v", timestamp="ts", granularity="daily")
    cols = ["is_anomaly", "expected_value", "lower_boundary", "upper_boundary", "period"]
    if frame == "polars":
        want, got = want.to_pandas(), got.to_pandas()
    pd.testing.assert_frame_equal(got[cols], want[cols])
    assert bool(got["is_anomaly"].iloc[50])
    assert got["ts"].dt.tz is not None  # the output keeps the column as given


def test_an_hourly_grid_of_aware_data_stays_in_utc():
    """Hourly steps are laid on UTC: the local hour that DST skips is no missing point."""
    utc = pd.date_range("2024-03-30T00:00", periods=72, freq="h", tz="UTC")
    df = pd.DataFrame({"ts": utc.tz_convert("Europe/Berlin"), "v": np.sin(np.arange(72) / 3.0)})
    out = df.anomaly.detect(value="v", timestamp="ts", granularity="hourly")
    assert len(out) == 72 and out["expected_value"].notna().all()
