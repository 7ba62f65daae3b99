"""ad_pipeline.spark on a real local[2] SparkSession: exactly the pandas accessor's rows and values."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

pytest.importorskip("pyspark")

import ad_pipeline  # noqa: E402,F401  (registers df.anomaly)
from ad_pipeline import spark as ads  # noqa: E402
from ad_pipeline.errors import BadArgument  # noqa: E402
from tests.support.frames_data import long_columns  # noqa: E402
from tests.support.scale_out_data import KEYS, assert_same_rows, mixed_frame  # noqa: E402
from tests.support.spark_session import ARROW_BATCH_ROWS  # noqa: E402

KINDS = ["detect", "detect_last", "change_points"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return mixed_frame(500)


@pytest.fixture(scope="module")
def sdf(spark: Any, frame: pd.DataFrame) -> Any:
    return spark.createDataFrame(frame).cache()


@pytest.mark.parametrize("kind", KINDS)
def test_500_mixed_series_give_exactly_the_pandas_accessors_rows(frame: pd.DataFrame, sdf: Any, kind: str) -> None:
    want = getattr(frame.anomaly, kind)(by=KEYS, errors="coerce")
    got = getattr(ads, kind)(sdf, by=KEYS, errors="coerce").toPandas()
    assert_same_rows(got, want, KEYS, "timestamp")
    # the data exercises what it should: series longer than an Arrow batch, invalid series, results
    sizes = frame.groupby(KEYS, dropna=False).size()
    assert len(sizes) == 500 and (sizes > ARROW_BATCH_ROWS).sum() >= 15
    codes = want["anomaly_error_code"]
    assert codes.notna().any() and codes.isna().any()
    flag = "is_change_point" if kind == "change_points" else "is_anomaly"
    assert want[flag].fillna(False).astype(bool).any()


def test_output_schema_is_the_ddl_of_the_result(spark: Any, sdf: Any) -> None:
    for kind, fn in zip(["detect", "last", "change_points"], [ads.detect, ads.detect_last, ads.change_points], strict=True):
        ddl = ads.output_schema(sdf, kind, by=KEYS, errors="coerce")
        assert spark.createDataFrame([], ddl).schema == fn(sdf, by=KEYS, errors="coerce").schema
    ddl = ads.output_schema(sdf, "last", by="host", period=4)
    assert ddl == (
        "`host` bigint, `timestamp` timestamp, `value` double, `is_anomaly` boolean, `is_positive_anomaly` boolean, "
        "`is_negative_anomaly` boolean, `expected_value` double, `lower_boundary` double, `upper_boundary` double, "
        "`lower_margin` double, `upper_margin` double, `severity` double, `period` bigint, `suggested_window` bigint"
    )


def test_two_value_columns_and_large_strings(spark: Any) -> None:
    df = pd.DataFrame(long_columns(n_series=6, n_points=50, short_series=True))
    sdf = spark.createDataFrame(df)
    want = df.anomaly.detect(["value", "value2"], by="key", errors="coerce", period=12)
    spark.conf.set("spark.sql.execution.arrow.useLargeVarTypes", "true")
    try:
        got = ads.detect(sdf, ["value", "value2"], by="key", errors="coerce", period=12).toPandas()
    finally:
        spark.conf.unset("spark.sql.execution.arrow.useLargeVarTypes")
    assert_same_rows(got, want, ["key"], "timestamp")
    assert got["value2_anomaly_error_code"].eq("InvalidSeries").sum() == 5


def test_errors_raise_fails_the_job_naming_the_series(spark: Any) -> None:
    df = pd.DataFrame(long_columns(n_series=3, n_points=40, short_series=True))
    lazy = ads.detect(spark.createDataFrame(df), by="key")  # nothing runs yet
    with pytest.raises(Exception, match=r"at least 12 points.*series 'short'"):
        lazy.collect()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timestamp": None}, "no row order"),
        ({"value": "note"}, "must be numeric"),
        ({"timestamp": "host"}, "must hold datetimes"),
        ({"by": "nope"}, "'by' column 'nope' is not in the frame"),
        ({"value": ["value", "value"]}, "must not repeat"),
        ({"errors": "ignore"}, "'errors' argument"),
    ],
)
def test_bad_arguments_are_refused_before_any_job(sdf: Any, kwargs: dict[str, Any], match: str) -> None:
    args = {"by": KEYS, **kwargs}
    with pytest.raises(BadArgument, match=match):
        ads.detect(sdf, **args)


def test_a_fitted_tabular_detector_scores_a_spark_dataframe(spark: Any) -> None:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"id": np.arange(400), "a": rng.normal(size=400), "b": rng.normal(size=400),
                       "kind": rng.choice(["x", "y"], 400)})
    df.loc[7, ["a", "b"]] = [9.0, -9.0]
    model = df.anomaly.fit_outliers(key="id", contamination=0.02)
    want = df.anomaly.score_outliers(model)
    got = ads.score_outliers(spark.createDataFrame(df).repartition(3), model).toPandas().sort_values("id")
    assert got["anomaly"].tolist() == want["anomaly"].tolist()
    assert got["is_anomaly"].tolist() == want["is_anomaly"].tolist() and bool(got["is_anomaly"].iloc[7])
    tops = [[(d["feature"], d["contribution"]) for d in row] for row in got["anomaly_top_features"]]
    assert tops == [[(d["feature"], d["contribution"]) for d in row] for row in want["anomaly_top_features"]]
    assert list(ads.score_outliers(spark.createDataFrame(df), model, top=0).columns) == [*df.columns, "anomaly", "is_anomaly"]


@pytest.mark.parametrize("rows", [1, 2, 3, 7, 50])
def test_whole_series_never_splits_a_series_across_batches(rows: int) -> None:
    keys = ["a"] * 5 + ["b"] + [None] * 3 + ["c"] * 8
    nums = [1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4]
    t = pa.table({"k": pa.array(keys, pa.string()), "n": nums, "row": range(len(keys))})
    tables = list(ads.whole_series(iter(t.to_batches(max_chunksize=rows)), ["k", "n"]))
    assert pa.concat_tables(tables).column("row").to_pylist() == list(range(len(keys)))
    seen = [list(zip(s.column("k").to_pylist(), s.column("n").to_pylist(), strict=True)) for s in tables]
    firsts = [s[0] for s in seen]
    assert len(firsts) == len(set(firsts))  # each table starts a new series: none continues across tables
    assert all(s[0] not in {x for other in seen if other is not s for x in other} for s in seen)
    assert [s.num_rows for s in ads.whole_series(iter(t.to_batches(max_chunksize=rows)), [])] == [len(keys)]
