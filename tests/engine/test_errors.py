"""Every refusal: the right error class and Azure code, and a message naming the field and the value.

Table-driven: each case is (entry point, input, parameters) -> (error class, message fragments).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import ad_pipeline as ad
from ad_pipeline import errors as E

X = np.sin(np.arange(48) / 3.0) * 10 + 50  # a valid series of 48 points
DAYS = np.datetime64("2024-01-01T00:00", "ns") + np.arange(48) * np.timedelta64(1, "D")
DAY = np.timedelta64(1, "D")


@dataclass
class Case:
    id: str
    call: Callable[[], Any]
    error: type[E.AnomalyDetectorError]
    fragments: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)


def entire(values: Any = X, timestamps: Any = None, **kw: Any) -> Callable[[], Any]:
    return lambda: ad.detect_entire(values, timestamps, **kw)


def last(values: Any = X, timestamps: Any = None, **kw: Any) -> Callable[[], Any]:
    return lambda: ad.detect_last(values, timestamps, **kw)


def cps(values: Any = X, timestamps: Any = None, **kw: Any) -> Callable[[], Any]:
    return lambda: ad.detect_change_points(values, timestamps, **kw)


def batch(fn: Callable[..., Any], values: Any = X, offsets: Any = (0, 48), **kw: Any) -> Callable[[], Any]:
    return lambda: fn(values, list(offsets) if isinstance(offsets, tuple) else offsets, **kw)


def _with(ts: np.ndarray, i: int, value: np.datetime64) -> np.ndarray:
    out = ts.copy()
    out[i] = value
    return out


CASES = [
    # ---- BadArgument
    Case("non-numeric value", entire(list(X[:47]) + ["abc"]), E.BadArgument, ("'series'", "'abc'", "index 47")),
    Case("non-numeric batch", batch(ad.detect_entire_batch, ["x"] * 48), E.BadArgument, ("'series'", "'x'")),
    Case("2-d values", entire(np.ones((4, 12))), E.BadArgument, ("'series'", "one-dimensional", "(4, 12)")),
    Case("offsets past end", batch(ad.detect_entire_batch, offsets=(0, 50)), E.BadArgument, ("'offsets'", "50")),
    Case("offsets not from 0", batch(ad.detect_entire_batch, offsets=(2, 48)), E.BadArgument, ("'offsets'", "2 ..")),
    Case(
        "offsets decreasing",
        batch(ad.detect_entire_batch, offsets=(0, 30, 20, 48)),
        E.BadArgument,
        ("'offsets'", "offsets[2] = 20 after 30"),
    ),
    Case("float offsets", batch(ad.detect_entire_batch, offsets=np.array([0.0, 48.0])), E.BadArgument, ("'offsets'", "integer")),
    Case("unknown parameter", batch(ad.detect_entire_batch, sensitivty=95), E.BadArgument, ("sensitivty", "sensitivity")),
    Case("unknown parameter last", batch(ad.detect_last_batch, threshold=0.5), E.BadArgument, ("threshold",)),
    Case(
        "unknown parameter change points",
        batch(ad.detect_change_points_batch, sensitivity=95),
        E.BadArgument,
        ("sensitivity", "stable_trend_window"),
    ),
    Case("bad errors", batch(ad.detect_entire_batch, errors="ignore"), E.BadArgument, ("'errors'", "'ignore'")),
    Case("bad errors last", batch(ad.detect_last_batch, errors="warn"), E.BadArgument, ("'errors'", "'warn'")),
    Case("bad errors cp", batch(ad.detect_change_points_batch, errors=None), E.BadArgument, ("'errors'", "None")),
    Case(
        "per-series array of wrong length",
        batch(ad.detect_entire_batch, sensitivity=[95, 99]),
        E.BadArgument,
        ("'sensitivity'", "one value per series (1)", "got 2"),
    ),
    Case("timestamps of wrong length", entire(X, DAYS[:40]), E.BadArgument, ("'timestamps'", "(48)", "40")),
    Case("unparsable timestamp", entire(X, ["yesterday"] * 48), E.BadArgument, ("timestamp", "yesterday")),
    Case("unknown method", entire(method="magic"), E.BadArgument, ("'method'", "'magic'")),
    # ---- InvalidSeries
    Case("11 points", entire(X[:11]), E.InvalidSeries, ("'series'", "at least 12", "got 11")),
    Case("11 observed points", entire(np.r_[X[:11], [np.nan] * 5]), E.InvalidSeries, ("at least 12", "got 11")),
    Case("11 points change points", cps(X[:11]), E.InvalidSeries, ("'series'", "at least 12", "got 11")),
    Case(
        "unsorted timestamps",
        entire(X, _with(DAYS, 10, DAYS[5]), granularity="daily"),
        E.InvalidSeries,
        ("'series'", "ascending", "2024-01-06", "index 10"),
    ),
    Case(
        "duplicated timestamp",
        entire(X, _with(DAYS, 11, DAYS[10]), granularity="daily"),
        E.InvalidSeries,
        ("'series'", "duplicated timestamp", "2024-01-11", "index 11"),
    ),
    Case(
        "off-grid timestamp",
        entire(X, _with(DAYS, 7, DAYS[7] + np.timedelta64(1, "h")), granularity="daily"),
        E.InvalidSeries,
        ("grid", "'daily'", "2024-01-08T01:00", "index 7"),
    ),
    Case(
        "more than half the grid missing with a given period",
        entire(X[::3], DAYS[::3], granularity="daily", period=7),
        E.InvalidSeries,
        ("50%", "period 7", "at least 23", "of its 46 grid points", "got 16"),
    ),
    Case("value above 1e100", entire(np.r_[X[:20], 2e100, X[21:]]), E.InvalidSeries, ("'series'", "1e100", "2e+100", "index 20")),
    Case("value below -1e100", entire(np.r_[X[:20], -5e100, X[21:]]), E.InvalidSeries, ("1e100", "-5e+100")),
    Case("inf", entire(np.r_[X[:30], np.inf, X[31:]]), E.InvalidSeries, ("'series'", "inf", "index 30")),
    Case("-inf change points", cps(np.r_[X[:3], -np.inf, X[4:]]), E.InvalidSeries, ("'series'", "-inf", "index 3")),
    Case("missing last point", last(np.r_[X[:47], np.nan]), E.InvalidSeries, ("last point", "missing")),
    Case(
        # the Azure model answers such a series on its points alone (test_timestamps.py); auto builds the grid
        "grid too big for memory",
        entire(X, DAYS[0] + np.arange(48) * np.timedelta64(2_000_000, "s"), granularity="secondly", method="auto"),
        E.InvalidSeries,
        ("'secondly'", "94000001 grid points", "48 points", "4000000"),
    ),
    # ---- InvalidGranularity
    Case("unknown granularity", entire(granularity="fortnightly"), E.InvalidGranularity, ("'granularity'", "'fortnightly'")),
    Case("granularity not a string", entire(granularity=7), E.InvalidGranularity, ("'granularity'", "got 7")),
    Case(
        "irregular timestamps, inferred",
        entire(X, DAYS + (np.arange(48) * 1234567).astype("timedelta64[ns]")),
        E.InvalidGranularity,
        ("granularity", "86400001234567 ns"),
    ),
    Case(
        "jittered timestamps, inferred",
        entire(X, _with(DAYS, 9, DAYS[9] + np.timedelta64(1, "us"))),
        E.InvalidGranularity,
        ("no regular grid", "'microsecond'", "48 points"),
    ),
    # ---- InvalidCustomInterval
    Case("custom_interval 0", entire(custom_interval=0), E.InvalidCustomInterval, ("'custom_interval'", "got 0")),
    Case("custom_interval -1", entire(custom_interval=-1), E.InvalidCustomInterval, ("'custom_interval'", "got -1")),
    Case("custom_interval 2.5", entire(custom_interval=2.5), E.InvalidCustomInterval, ("'custom_interval'", "got 2.5")),
    Case("custom_interval '5'", cps(custom_interval="5"), E.InvalidCustomInterval, ("'custom_interval'", "'5'")),
    # ---- InvalidPeriod
    Case("period -1", entire(period=-1), E.InvalidPeriod, ("'period'", "got -1")),
    Case("period 2.5", entire(period=2.5), E.InvalidPeriod, ("'period'", "got 2.5")),
    Case("period -1 change points", cps(period=-1), E.InvalidPeriod, ("'period'", "got -1")),
    # ---- InvalidModelArgument
    Case("sensitivity 120", entire(sensitivity=120), E.InvalidModelArgument, ("'sensitivity'", "got 120")),
    Case("sensitivity -1", entire(sensitivity=-1), E.InvalidModelArgument, ("'sensitivity'", "got -1")),
    Case("sensitivity nan", last(sensitivity=float("nan")), E.InvalidModelArgument, ("'sensitivity'", "nan")),
    Case("sensitivity '95'", entire(sensitivity="95"), E.InvalidModelArgument, ("'sensitivity'", "'95'")),
    Case("sensitivity True", entire(sensitivity=True), E.InvalidModelArgument, ("'sensitivity'", "True")),
    Case("max_anomaly_ratio 0", entire(max_anomaly_ratio=0), E.InvalidModelArgument, ("'max_anomaly_ratio'", "got 0")),
    Case("max_anomaly_ratio 0.5", entire(max_anomaly_ratio=0.5), E.InvalidModelArgument, ("'max_anomaly_ratio'", "got 0.5")),
    Case("max_anomaly_ratio 0.7", last(max_anomaly_ratio=0.7), E.InvalidModelArgument, ("'max_anomaly_ratio'", "got 0.7")),
    Case("max_anomaly_ratio -0.1", entire(max_anomaly_ratio=-0.1), E.InvalidModelArgument, ("'max_anomaly_ratio'", "-0.1")),
    Case(
        "period too long for series",
        entire(period=24),
        E.InvalidModelArgument,
        ("'series'", "more than 2 periods", "period 24", "49", "got 48"),
    ),
    Case("period too long change points", cps(X[:20], period=10), E.InvalidModelArgument, ("period 10", "21", "got 20")),
    Case("stable_trend_window 2", cps(stable_trend_window=2), E.InvalidModelArgument, ("'stable_trend_window'", "got 2")),
    Case("stable_trend_window 4.5", cps(stable_trend_window=4.5), E.InvalidModelArgument, ("'stable_trend_window'", "4.5")),
    Case("threshold 1.5", cps(threshold=1.5), E.InvalidModelArgument, ("'threshold'", "got 1.5")),
    Case("threshold 0", cps(threshold=0), E.InvalidModelArgument, ("'threshold'", "got 0")),
    Case("threshold 1", cps(threshold=1), E.InvalidModelArgument, ("'threshold'", "got 1")),
    # ---- InvalidImputeMode
    Case("impute_mode foo", entire(impute_mode="foo"), E.InvalidImputeMode, ("'impute_mode'", "'foo'")),
    Case("impute_mode 3", last(impute_mode=3), E.InvalidImputeMode, ("'impute_mode'", "got 3")),
    # ---- InvalidImputeFixedValue
    Case(
        "fixed without value",
        entire(impute_mode="fixed"),
        E.InvalidImputeFixedValue,
        ("'impute_fixed_value'", "'fixed'", "None"),
    ),
    Case("fixed with nan", entire(impute_mode="fixed", impute_fixed_value=float("nan")), E.InvalidImputeFixedValue, ("nan",)),
    Case("fixed with text", entire(impute_mode="fixed", impute_fixed_value="zero"), E.InvalidImputeFixedValue, ("'zero'",)),
    # ---- InvalidBoundaryVersion
    Case("boundary_version V9", entire(boundary_version="V9"), E.InvalidBoundaryVersion, ("'boundary_version'", "'V9'")),
    Case("boundary_version 1", last(boundary_version=1), E.InvalidBoundaryVersion, ("'boundary_version'", "got 1")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error_code_and_message(case: Case) -> None:
    with pytest.raises(case.error) as info:
        case.call()
    err = info.value
    assert type(err) is case.error  # exactly this code, not a sibling or the base
    assert err.code == case.error.__name__
    assert isinstance(err, ValueError)
    assert err.message == str(err)
    for fragment in case.fragments:
        assert fragment in err.message, f"{fragment!r} not in {err.message!r}"
    assert err.to_dict() == {"code": case.error.__name__, "message": err.message}


def test_every_code_has_a_case() -> None:
    covered = {c.error for c in CASES}
    expected = {
        E.BadArgument,
        E.InvalidSeries,
        E.InvalidGranularity,
        E.InvalidCustomInterval,
        E.InvalidPeriod,
        E.InvalidModelArgument,
        E.InvalidImputeMode,
        E.InvalidImputeFixedValue,
        E.InvalidBoundaryVersion,
    }
    assert expected <= covered


@pytest.mark.parametrize("cls", [c for c in vars(E).values() if isinstance(c, type) and issubclass(c, E.AnomalyDetectorError)])
def test_hierarchy_to_dict_and_pickle(cls: type[E.AnomalyDetectorError]) -> None:
    err = cls("The 'x' field must be y, got z.")
    assert isinstance(err, E.AnomalyDetectorError) and isinstance(err, ValueError)
    assert err.to_dict() == {"code": cls.code, "message": "The 'x' field must be y, got z."}
    assert set(err.to_dict()) == {"code", "message"}
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and back.code == cls.code and back.message == err.message
    if cls is not E.AnomalyDetectorError:  # the base carries the generic code BadArgument
        assert type(E.error_from_code(cls.code, "m")) is cls


def test_missing_dependency_names_the_extra() -> None:
    err = E.MissingDependency.for_extra("polars", "polars")
    assert isinstance(err, ImportError) and err.code == "MissingDependency"
    assert "pip install 'ad-pipeline-anomaly[polars]'" in err.message


# --------------------------------------------------------------------------- what is accepted


@pytest.mark.parametrize(
    "params",
    [
        {"sensitivity": 95.0},
        {"sensitivity": np.int64(95)},
        {"sensitivity": 0},
        {"sensitivity": 100},
        {"sensitivity": 99.5},
        {"max_anomaly_ratio": np.float32(0.2)},
        {"max_anomaly_ratio": 0.49},
        {"period": 12.0},
        {"period": np.int32(12)},
        {"period": 0},
        {"custom_interval": 5.0, "granularity": "minutely"},
        {"granularity": "DAILY"},
        {"impute_mode": "notfill"},
        {"impute_mode": "fixed", "impute_fixed_value": 0},
        {"boundary_version": "v3"},
    ],
    ids=repr,
)
def test_accepted_parameters(params: dict[str, Any]) -> None:
    r = ad.detect_entire(X, **params)
    assert len(r.is_anomaly) == len(X)
    if "period" in params:
        assert r.period == int(params["period"])


def test_integer_valued_floats_accepted_for_change_points() -> None:
    r = ad.detect_change_points(X, stable_trend_window=10.0, period=0.0, threshold=0.5)
    assert len(r.is_change_point) == len(X) and r.period == 0


def test_integer_ratio_refused_float_sensitivity_accepted() -> None:
    with pytest.raises(E.InvalidModelArgument, match="max_anomaly_ratio"):
        ad.detect_entire(X, max_anomaly_ratio=0)
    with pytest.raises(E.InvalidModelArgument, match="max_anomaly_ratio"):
        ad.detect_entire(X, max_anomaly_ratio=1)
    assert ad.detect_entire(X, sensitivity=95.0).is_anomaly.shape == X.shape


def test_nan_values_are_missing_points_not_errors() -> None:
    x = X.copy()
    x[[3, 17]] = np.nan
    r = ad.detect_entire(x)
    assert not r.is_anomaly[[3, 17]].any()
    r = ad.detect_entire([*X[:47], None])  # None is NaN as well
    assert len(r.is_anomaly) == 48


# --------------------------------------------------------------------------- batches


def test_coerce_records_code_and_message_per_series_and_goes_on() -> None:
    values = np.r_[X, X[:11], X, X]
    offsets = [0, 48, 59, 107, 155]
    res = ad.detect_entire_batch(values, offsets, errors="coerce", sensitivity=[99, 99, 120, 95])
    assert res.error_code.tolist() == [None, "InvalidSeries", "InvalidModelArgument", None]
    assert res.error_message[0] is None and res.error_message[3] is None
    assert "got 11" in res.error_message[1] and "(series 1)" in res.error_message[1]
    assert "'sensitivity'" in res.error_message[2] and "got 120" in res.error_message[2]
    assert res.valid.tolist() == [True, False, False, True]
    assert res.period[1] == -1 and res.period[2] == -1
    # failed series: NaN numbers and no flags; good series: as if alone
    assert np.isnan(res.expected_values[48:107]).all() and not res.is_anomaly[48:107].any()
    alone = ad.detect_entire(X, sensitivity=95)
    np.testing.assert_array_equal(res.expected_values[107:], alone.expected_values)
    np.testing.assert_array_equal(res.is_anomaly[107:], alone.is_anomaly)


def test_coerce_last_and_change_points() -> None:
    values = np.r_[X, np.r_[X[:47], np.nan]]
    last_res = ad.detect_last_batch(values, [0, 48, 96], errors="coerce")
    assert last_res.error_code.tolist() == [None, "InvalidSeries"]
    assert "last point" in last_res.error_message[1]
    cp = ad.detect_change_points_batch(np.r_[X, X], [0, 48, 96], errors="coerce", threshold=[0.5, 2.0])
    assert cp.error_code.tolist() == [None, "InvalidModelArgument"]
    assert "'threshold'" in cp.error_message[1] and "got 2.0" in cp.error_message[1]
    assert np.isnan(cp.confidence_scores[48:]).all() and not cp.is_change_point[48:].any()


def test_raise_stops_at_the_first_bad_series_naming_it() -> None:
    values = np.r_[X, X, X]
    with pytest.raises(E.InvalidModelArgument, match=r"got 120 \(series 1\)\.$"):
        ad.detect_entire_batch(values, [0, 48, 96, 144], sensitivity=[99, 120, -5])


@pytest.mark.parametrize("keys", [["a", "b", "c"], np.array(["a", "b", "c"], dtype=object), lambda i: "abc"[i]])
def test_keys_name_the_series_in_messages(keys: Any) -> None:
    values = np.r_[X, X[:5], X]
    with pytest.raises(E.InvalidSeries) as info:
        ad.detect_entire_batch(values, [0, 48, 53, 101], keys=keys)
    assert info.value.message.endswith("(series 'b').")
    res = ad.detect_change_points_batch(values, [0, 48, 53, 101], keys=keys, errors="coerce")
    assert res.error_message[1].endswith("(series 'b').")


def test_single_series_messages_have_no_series_label() -> None:
    with pytest.raises(E.InvalidSeries) as info:
        ad.detect_entire(X[:5])
    assert "(series" not in info.value.message


def test_per_series_parameter_arrays_apply_per_series() -> None:
    values = np.r_[X, X]
    res = ad.detect_entire_batch(values, [0, 48, 96], period=[0, 6], sensitivity=np.array([95, 0]))
    assert res.period.tolist() == [0, 6]
    assert res.valid.all()
    a = ad.detect_entire(X, period=0, sensitivity=95)
    b = ad.detect_entire(X, period=6, sensitivity=0)
    np.testing.assert_array_equal(res.upper_margins, np.r_[a.upper_margins, b.upper_margins])


def test_per_series_nan_means_default() -> None:
    values = np.r_[X, X]
    res = ad.detect_entire_batch(values, [0, 48, 96], period=[np.nan, 0.0], errors="coerce")
    assert res.valid.all()
    assert res.period[0] == ad.detect_entire(X).period


@pytest.mark.parametrize(
    "stamps",
    [["9999-12-31T00:00:00Z"] * 12, np.full(12, np.datetime64("1500-01-01", "D"))],
    ids=["string year 9999", "datetime64[D] year 1500"],
)
def test_timestamps_outside_the_nanosecond_range_are_refused(stamps) -> None:
    with pytest.raises(ad.errors.BadArgument, match="between 1678-01-01"):
        ad.detect_entire(np.arange(12.0), stamps)


def test_an_unexpected_fault_names_the_series_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure that is not an input error stops the batch (even with errors="coerce": it may be a
    bug), and says which series raised it."""
    from ad_pipeline.engine.azure import detect

    real = detect.run_model

    def faulty(prep: Any, last: bool, components: Any = None) -> Any:
        if prep.x[0] == 777.0:
            raise FloatingPointError("injected fault")
        return real(prep, last, components)

    monkeypatch.setattr(detect, "run_model", faulty)
    x = np.tile(np.sin(np.arange(48) * np.pi / 6) + 10, 3)
    x[96] = 777.0  # the third series
    for errors in ("raise", "coerce"):
        with pytest.raises(FloatingPointError, match="injected fault") as info:
            ad.detect_entire_batch(x, [0, 48, 96, 144], errors=errors, keys=["a", "b", "c"])
        assert info.value.__notes__ == ["ad_pipeline: raised while detecting series 'c' (index 2 of the batch)"]
    assert ad.detect_entire_batch(x[:96], [0, 48, 96], errors="coerce").period.tolist() == [12, 12]
