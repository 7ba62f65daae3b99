"""polars: DataFrame.anomaly / LazyFrame.anomaly — laziness, schema, dtypes, errors."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ad_pipeline.errors import BadArgument, InvalidSeries

from ..support.frames_data import long_columns


@pytest.fixture
def df() -> pl.DataFrame:
    cols = long_columns(short_series=True)
    return pl.DataFrame({**cols, "key": cols["key"].astype(str)})


def test_lazy_plan_stays_lazy_until_collect(df: pl.DataFrame) -> None:
    calls = []

    def source(d: pl.DataFrame) -> pl.DataFrame:
        calls.append(len(d))
        return d

    lf = df.lazy().map_batches(source, schema=df.schema)
    plan = lf.anomaly.detect(by="key", period=12, errors="coerce")
    last = lf.anomaly.detect_last(by="key", period=12, errors="coerce")
    assert isinstance(plan, pl.LazyFrame) and calls == []
    schema = plan.collect_schema()
    assert calls == []
    out = plan.collect()
    assert calls == [df.height]
    assert out.schema == schema
    assert out.height == df.height and out["row"].to_list() == df["row"].to_list()
    assert last.collect().schema == last.collect_schema()


def test_lazy_checks_columns_when_the_plan_is_built(df: pl.DataFrame) -> None:
    with pytest.raises(BadArgument, match="'value' column 'nope'"):
        df.lazy().anomaly.detect(value="nope", by="key")
    with pytest.raises(BadArgument, match="'errors' argument"):
        df.lazy().anomaly.detect(by="key", errors="skip")


def test_errors_coerce_gives_nulls_and_messages(df: pl.DataFrame) -> None:
    out = df.anomaly.detect(by="key", period=12, errors="coerce")
    short = out.filter(pl.col("key") == "short")
    assert short["is_anomaly"].null_count() == 5 and short["period"].null_count() == 5
    assert short["expected_value"].null_count() == 5
    assert set(short["anomaly_error_code"].to_list()) == {"InvalidSeries"}
    assert out.filter(pl.col("key") != "short")["anomaly_error"].null_count() == out.height - 5
    with pytest.raises(InvalidSeries, match=r"\(series 'short'\)"):
        df.anomaly.detect(by="key", period=12)


def test_key_dtypes_give_the_same_results(df: pl.DataFrame) -> None:
    ok = df.filter(pl.col("key") != "short")
    base = ok.anomaly.detect(by="key", period=12)
    codes = {"s0": 40, "s1": 7, "s2": 1_000_000_000_000, "s3": -3}
    variants = [
        ok.with_columns(pl.col("key").cast(pl.Categorical)),
        ok.with_columns(pl.col("key").cast(pl.Enum(["s3", "s2", "s1", "s0"]))),
        ok.with_columns(pl.col("key").replace_strict(codes, return_dtype=pl.Int64)),
        ok.with_columns(pl.col("key").replace_strict({"s0": 1.5, "s1": 2.5, "s2": 0.5, "s3": -1.0})),
        ok.with_columns(pl.col("key").replace({"s3": None})),
    ]
    for v in variants:
        out = v.anomaly.detect(by="key", period=12)
        assert out.drop("key").equals(base.drop("key")), v.schema["key"]


def test_date_and_tz_aware_timestamps(df: pl.DataFrame) -> None:
    ok = df.filter(pl.col("key") != "short")
    base = ok.anomaly.detect(by="key", period=12)
    tz = ok.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC").dt.convert_time_zone("America/Lima"))
    assert tz.anomaly.detect(by="key", period=12).drop("timestamp").equals(base.drop("timestamp"))
    days = ok.with_columns(pl.col("timestamp").dt.cast_time_unit("ms"))
    assert days.anomaly.detect(by="key", period=12).drop("timestamp").equals(base.drop("timestamp"))
    daily = pl.DataFrame({"timestamp": pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 2, 29), eager=True)})
    daily = daily.with_columns(value=pl.int_range(pl.len()).mod(7).cast(pl.Float64))
    assert daily.anomaly.detect().height == daily.height


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (pl.col("value").cast(pl.String), "'value' column 'value' must be numeric, got dtype String"),
        (pl.col("timestamp").cast(pl.String), "'timestamp' column 'timestamp' must hold datetimes"),
        (pl.col("value") > 0, "must be numeric, got dtype Boolean"),
    ],
)
def test_wrong_dtypes_are_refused(df: pl.DataFrame, change: pl.Expr, match: str) -> None:
    with pytest.raises(BadArgument, match=match):
        df.with_columns(change).anomaly.detect(by="key", errors="coerce")


def test_detect_last_and_change_points(df: pl.DataFrame) -> None:
    last = df.anomaly.detect_last(by="key", period=12, errors="coerce")
    assert last["key"].to_list() == ["s0", "s1", "s2", "s3", "short"]
    assert last["suggested_window"].dtype == pl.Int64 and last["suggested_window"][-1] is None
    cp = df.lazy().anomaly.change_points(by="key", errors="coerce").collect()
    assert cp.columns[-4:] == ["is_change_point", "change_point_confidence", "anomaly_error_code", "anomaly_error"]
    assert cp["row"].to_list() == df["row"].to_list()
    vals = df.filter(pl.col("key") != "short").anomaly.detect(value=["value", "value2"], by="key", period=12)
    assert "value2_expected_value" in vals.columns and np.isfinite(vals["value2_expected_value"].to_numpy()).all()
