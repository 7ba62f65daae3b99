"""Timestamps as Azure took them: the one parser, calendar grids across DST, grids with a gap of decades."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

import ad_pipeline as ad
from ad_pipeline.engine.batch import get_model
from ad_pipeline.engine.granularity import ACCEPTED_FORMS, as_datetime64, parse_timestamp
from ad_pipeline.engine.model import GridSeries
from ad_pipeline.engine.params import SeriesParams
from ad_pipeline.errors import BadArgument

PARSED = [  # (text, UTC wall time it denotes, minutes east of UTC)
    ("2021-12-16T04:39:32", "2021-12-16T04:39:32", 0),
    ("2021-12-16T04:39:32Z", "2021-12-16T04:39:32", 0),
    ("2021-12-16T04:39:32.125Z", "2021-12-16T04:39:32.125", 0),
    ("2021-12-16T04:39:32.1234567Z", "2021-12-16T04:39:32.123456", 0),
    ("2021-12-16 04:39:32", "2021-12-16T04:39:32", 0),
    ("2021-12-16", "2021-12-16T00:00:00", 0),
    ("2021-12-16T04:39:32+02:00", "2021-12-16T02:39:32", 120),
    ("2021-12-16T04:39:32-05:30", "2021-12-16T10:09:32", -330),
    ("  2021-12-16T04:39:32Z ", "2021-12-16T04:39:32", 0),
    ("12/16/2021 4:39:32 AM ", "2021-12-16T04:39:32", 0),
    (" 12/16/2021 4:39:32 PM", "2021-12-16T16:39:32", 0),
    ("12/16/2021 12:00:00 AM", "2021-12-16T00:00:00", 0),
    ("12/16/2021 12:05:00 PM", "2021-12-16T12:05:00", 0),
    ("1/2/2021 4:39 PM", "2021-01-02T16:39:00", 0),
    ("1/2/2021 16:39:05", "2021-01-02T16:39:05", 0),
    ("01/02/2021", "2021-01-02T00:00:00", 0),
]


@pytest.mark.parametrize(("text", "utc", "offset"), PARSED, ids=[t for t, _, _ in PARSED])
def test_accepted_forms(text: str, utc: str, offset: int) -> None:
    t, minutes = parse_timestamp(text)
    assert (t, minutes) == (np.datetime64(utc, "us"), offset)


@pytest.mark.parametrize("bad", ["yesterday", "13/45/2021 1:00 PM", "12/16/2021 13:00 PM", "2021-02-30", "16.12.2021"])
def test_a_value_in_no_accepted_form_is_refused_naming_it_and_the_forms(bad: str) -> None:
    stamps = [f"2021-01-{d:02d}" for d in range(1, 13)]
    stamps[5] = bad
    with pytest.raises(BadArgument) as err:
        ad.detect_entire(np.arange(12.0), stamps)
    assert repr(bad) in err.value.message and "index 5" in err.value.message
    assert ACCEPTED_FORMS in err.value.message


def test_dotnet_and_iso_strings_give_the_same_answer() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(10, 1, 60)
    x[40] = 25
    t = np.datetime64("2021-12-01T04:39:32") + np.arange(60) * np.timedelta64(1, "h")
    iso = [str(v) + "Z" for v in t]
    dotnet = [v.item().strftime("%m/%d/%Y %I:%M:%S %p").lstrip("0").replace("/0", "/") + " " for v in t]
    a = ad.detect_entire(x, iso, granularity="hourly").to_dict()
    assert a == ad.detect_entire(x, dotnet, granularity="hourly").to_dict()
    assert a["isAnomaly"][40]


# --------------------------------------------------------------------------- calendar grids across DST

ZONES = ["Europe/Berlin", "America/New_York", "Pacific/Auckland", "Asia/Kolkata"]


def _local(zone: str, dates: list[dt.date]) -> list[dt.datetime]:
    return [dt.datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(zone)) for d in dates]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(("granularity", "step"), [("daily", 1), ("weekly", 7), ("monthly", None)])
def test_local_midnights_across_dst_are_a_calendar_grid(zone: str, granularity: str, step: int | None) -> None:
    n = 40
    if step is None:
        dates = [dt.date(2020 + i // 12, i % 12 + 1, 1) for i in range(n)]
    else:
        dates = [dt.date(2024, 2, 20) + dt.timedelta(days=step * i) for i in range(n)]
    x = np.sin(np.arange(n)) + np.random.default_rng(0).normal(0, 0.1, n)
    x[30] += 5
    naive = [dt.datetime(d.year, d.month, d.day) for d in dates]
    want = ad.detect_entire(x, naive, granularity=granularity).to_dict()
    aware = _local(zone, dates)
    assert ad.detect_entire(x, aware, granularity=granularity).to_dict() == want
    assert ad.detect_entire(x, [t.isoformat() for t in aware], granularity=granularity).to_dict() == want
    assert ad.detect_entire(x, [t.isoformat() for t in aware]).to_dict() == want  # granularity inferred


def test_hourly_data_stays_on_utc_across_dst() -> None:
    zone = ZoneInfo("Europe/Berlin")
    t0 = dt.datetime(2024, 3, 30, tzinfo=dt.UTC)
    aware = [(t0 + dt.timedelta(hours=h)).astimezone(zone).isoformat() for h in range(72)]
    x = np.random.default_rng(1).normal(0, 1, 72)
    utc = [(t0 + dt.timedelta(hours=h)).replace(tzinfo=None) for h in range(72)]
    assert ad.detect_entire(x, aware).to_dict() == ad.detect_entire(x, utc, granularity="hourly").to_dict()


# --------------------------------------------------------------------------- a gap of decades


def _gapped(n: int, gap: np.timedelta64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = 10 + rng.normal(0, 1, n)
    x[n // 2] = 30
    ts = np.datetime64("1990-01-01T00:00:00") + np.arange(n) * np.timedelta64(1, "s")
    ts[-1] = ts[-2] + gap
    return x, ts


def _span(n: int, span: int) -> np.timedelta64:
    """The gap before the last of ``n`` secondly points that makes their grid ``span`` points long."""
    return np.timedelta64(span - n + 1, "s")


@pytest.mark.parametrize("kind", ["entire", "last"])
def test_a_gap_of_decades_at_secondly_is_answered(kind: str) -> None:
    x, ts = _gapped(60, np.timedelta64(35 * 365 * 86_400, "s"))  # a grid of 1.1e9 points
    if kind == "entire":
        r = ad.detect_entire(x, ts, granularity="secondly")
        assert r.period == 0 and r.is_anomaly[30] and len(r.expected_values) == 60
    else:
        r2 = ad.detect_last(x, ts, granularity="secondly")
        assert r2.period == 0 and r2.suggested_window == 1441


@pytest.mark.parametrize("span", [17_281, 30_000])  # just above the no-fill limit, and well above
@pytest.mark.parametrize("mode", ["auto", "linear", "previous", "zero", "notFill"])
def test_points_alone_answer_as_the_full_grid_does(span: int, mode: str) -> None:
    """Above an index span of 17,280 and more than half empty, the model on the grid (built here,
    small enough) and on the points alone (what the engine does) give the same answer."""
    x, ts = _gapped(80, _span(80, span))
    x[10] = np.nan  # a given point without a value stays unfilled too
    got = ad.detect_entire(x, ts, granularity="secondly", impute_mode=mode)
    pos = ((ts - ts[0]) // np.timedelta64(1, "s")).astype(np.int64)
    assert pos[-1] == span - 1
    grid = np.full(span, np.nan)
    grid[pos] = x
    params = SeriesParams(granularity="secondly", impute_mode=mode, sensitivity=99.0)
    [full] = get_model("azure").entire([GridSeries(grid, "secondly", 1, params)])
    assert not isinstance(full, Exception)
    assert got.period == full.period == 0
    np.testing.assert_array_equal(got.is_anomaly, full.is_anomaly[pos])
    np.testing.assert_allclose(got.expected_values, full.expected[pos], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got.upper_margins, full.upper_margin[pos], rtol=1e-12, equal_nan=True)


def test_a_seasonal_period_on_a_half_empty_grid_is_still_refused() -> None:
    x, ts = _gapped(60, _span(60, 30_000))
    with pytest.raises(ad.AnomalyDetectorError, match="Ratio of missing points"):
        ad.detect_entire(x, ts, granularity="secondly", period=4)


def test_utc_of_timezone_aware_input() -> None:
    got = as_datetime64(["2024-03-31T02:30:00+02:00", dt.datetime(2024, 3, 31, 3, tzinfo=ZoneInfo("Europe/Berlin"))])
    want = np.array(["2024-03-31T00:30", "2024-03-31T01:00"], dtype="datetime64[ns]")
    np.testing.assert_array_equal(got, want)


def test_at_the_no_fill_limit_the_grid_is_still_filled() -> None:
    """17,280 grid points: Azure fills (linear here), so the answer differs from the points alone."""
    x, ts = _gapped(80, _span(80, 17_280))
    filled = ad.detect_entire(x, ts, granularity="secondly", impute_mode="linear")
    alone = ad.detect_entire(x, ts, granularity="secondly", impute_mode="notFill")
    assert filled.to_dict() != alone.to_dict()
