"""pandas: DataFrame.anomaly / Series.anomaly — registration, arguments, errors, dtypes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import ad_pipeline as ad
from ad_pipeline.errors import BadArgument, InvalidGranularity, InvalidSeries

from ..support.frames_data import long_columns

RESULTS = [
    "is_anomaly", "is_positive_anomaly", "is_negative_anomaly", "expected_value", "lower_boundary",
    "upper_boundary", "lower_margin", "upper_margin", "severity", "period",
]  # fmt: skip


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def test_import_does_not_import_pandas_or_polars_and_registers_on_their_import() -> None:
    out = _run(
        "import sys, ad_pipeline\n"
        "print('pandas' in sys.modules, 'polars' in sys.modules)\n"
        "import pandas as pd, polars as pl\n"
        "print(hasattr(pd.DataFrame, 'anomaly'), hasattr(pd.Series, 'anomaly'),"
        " hasattr(pl.DataFrame({'a': [1]}), 'anomaly'), hasattr(pl.LazyFrame({'a': [1]}), 'anomaly'))"
    )
    assert out.splitlines() == ["False False", "True True True True"]


def test_registers_at_once_when_pandas_was_imported_first() -> None:
    out = _run("import pandas as pd\nimport ad_pipeline\nprint(hasattr(pd.DataFrame, 'anomaly'))")
    assert out == "True"


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(long_columns())


def test_rows_order_and_other_columns_are_kept(df: pd.DataFrame) -> None:
    df.index = pd.RangeIndex(100, 100 + len(df))[::-1]
    out = df.anomaly.detect(by="key", period=12)
    assert out.columns.tolist() == [*df.columns, *RESULTS]
    pd.testing.assert_frame_equal(out[df.columns], df)
    assert out["is_anomaly"].dtype == bool and out["period"].dtype == np.int64


def test_shuffled_input_gives_the_results_of_sorted_input(df: pd.DataFrame) -> None:
    shuffled = df.anomaly.detect(by="key", period=12).sort_values("row").reset_index(drop=True)
    ordered = df.sort_values(["key", "timestamp"]).anomaly.detect(by="key", period=12).sort_values("row")
    pd.testing.assert_frame_equal(shuffled, ordered.reset_index(drop=True))


def test_granularity_is_inferred_per_series() -> None:
    cols = long_columns(n_series=2, step_minutes=5)
    df = pd.DataFrame(cols)
    inferred = df.anomaly.detect(by="key", period=12)
    explicit = df.anomaly.detect(by="key", period=12, granularity="minutely", custom_interval=5)
    pd.testing.assert_frame_equal(inferred, explicit)


def test_two_key_columns_and_timestamp_none() -> None:
    cols = long_columns(n_series=4, shuffle=False)
    df = pd.DataFrame(cols).assign(region=lambda d: d["key"].isin(["s0", "s1"]).map({True: "eu", False: "us"}))
    by_two = df.anomaly.detect(by=["region", "key"], period=12)
    by_one = df.anomaly.detect(by="key", period=12)
    pd.testing.assert_frame_equal(by_two[RESULTS], by_one[RESULTS])
    no_ts = df.drop(columns="timestamp").anomaly.detect(timestamp=None, by="key", period=12)
    assert len(no_ts) == len(df) and no_ts["is_anomaly"].any()


def test_errors_raise_names_the_key_and_coerce_goes_on() -> None:
    df = pd.DataFrame(long_columns(short_series=True))
    with pytest.raises(InvalidSeries, match=r"at least 12 points.*\(series 'short'\)"):
        df.anomaly.detect(by="key", period=12)
    out = df.anomaly.detect(by="key", period=12, errors="coerce")
    short = out["key"] == "short"
    assert out.loc[short, "is_anomaly"].isna().all() and out.loc[~short, "is_anomaly"].notna().all()
    assert out.loc[short, "period"].isna().all() and out["period"].dtype == "Int64"
    assert out.loc[short, "expected_value"].isna().all()
    assert (out.loc[short, "anomaly_error_code"] == "InvalidSeries").all()
    assert out.loc[short, "anomaly_error"].str.contains("'short'").all()
    assert out.loc[~short, "anomaly_error"].isna().all()


@pytest.mark.parametrize(
    ("change", "kwargs", "error", "match"),
    [
        (None, {"value": "nope"}, BadArgument, "'value' column 'nope' is not in the frame"),
        (None, {"by": "nope"}, BadArgument, "'by' column 'nope' is not in the frame"),
        (None, {"timestamp": "when"}, BadArgument, "'timestamp' column 'when' is not in the frame"),
        (lambda d: d.assign(value=d["value"].astype(str)), {}, BadArgument, "'value' column 'value' must be numeric"),
        (lambda d: d.assign(value=d["value"] > 0), {}, BadArgument, "must be numeric, got dtype bool"),
        (lambda d: d.assign(timestamp=d["timestamp"].astype(str)), {}, BadArgument, "must hold datetimes"),
        (lambda d: d.assign(timestamp=d["timestamp"].where(d["row"] != 7)), {}, BadArgument, "missing values, got one in row 7"),
        (lambda d: pd.concat([d, d[d["key"] == "s2"].head(1)]), {}, InvalidSeries, r"duplicated timestamp.*\(series 's2'\)"),
        (
            lambda d: d.assign(timestamp=d["timestamp"] + pd.to_timedelta(np.where(d["key"] == "s1", d["row"] % 3, 0), "ns")),
            {},
            InvalidGranularity,
            r"\(series 's1'\)",
        ),
        (None, {"errors": "ignore"}, BadArgument, "'errors' argument must be one of raise, coerce"),
        (None, {"sensitivity": 120}, ad.errors.InvalidModelArgument, "'sensitivity'"),
        (None, {"value": []}, BadArgument, "'value' argument"),
    ],
)
def test_bad_input_gives_a_clear_error(df, change, kwargs, error, match) -> None:  # type: ignore[no-untyped-def]
    frame = change(df) if change else df
    with pytest.raises(error, match=match):
        frame.anomaly.detect(**{"by": "key", "period": 12, **kwargs})


def test_nullable_and_integer_values_and_tz_aware_timestamps(df: pd.DataFrame) -> None:
    base = df.anomaly.detect(by="key", period=12)
    nullable = df.assign(value=df["value"].astype("Float64")).anomaly.detect(by="key", period=12)
    pd.testing.assert_frame_equal(base[RESULTS], nullable[RESULTS])
    tz = df.assign(timestamp=df["timestamp"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo"))
    pd.testing.assert_frame_equal(base[RESULTS], tz.anomaly.detect(by="key", period=12)[RESULTS])
    arrow = df.astype({"timestamp": pd.ArrowDtype(pa.timestamp("us")), "value": pd.ArrowDtype(pa.float64())})
    pd.testing.assert_frame_equal(base[RESULTS], arrow.anomaly.detect(by="key", period=12)[RESULTS])
    ints = df.assign(value=df["value"].fillna(0).round().astype("int32")).anomaly.detect(by="key", period=12)
    assert ints["expected_value"].notna().all()


def test_detect_last_and_change_points_shapes(df: pd.DataFrame) -> None:
    last = df.anomaly.detect_last(by="key", period=12)
    assert last["key"].tolist() == ["s0", "s1", "s2", "s3"]
    assert last.columns.tolist() == ["key", "timestamp", "value", *RESULTS, "suggested_window"]
    cp = df.anomaly.change_points(by="key")
    assert cp.columns.tolist() == [*df.columns, "is_change_point", "change_point_confidence"]
    assert cp["row"].tolist() == df["row"].tolist()


def test_series_accessor() -> None:
    x = np.tile([1.0, 2.0, 3.0, 2.0], 12)
    x[9] = 30.0
    s = pd.Series(x, index=pd.date_range("2024-01-01", periods=48, freq="h", name="when"), name="cpu")
    out = s.anomaly.detect(period=4, sensitivity=95)
    assert out.index.equals(s.index) and out.columns.tolist() == ["cpu", *RESULTS]
    frame = s.rename_axis("timestamp").reset_index().anomaly.detect(value="cpu", period=4, sensitivity=95)
    np.testing.assert_array_equal(out["expected_value"].to_numpy(), frame["expected_value"].to_numpy())
    assert out.index[out["is_anomaly"]].tolist() == [s.index[9]]
    last = s.anomaly.detect_last(period=4)
    assert last.index.tolist() == [s.index[-1]] and last["cpu"].iloc[0] == 2.0
    assert s.anomaly.change_points().shape == (48, 3)
    with pytest.raises(BadArgument, match="DatetimeIndex"):
        pd.Series(x).anomaly.detect()
