"""pandas, polars and DuckDB give exactly the engine's scores for the same model and rows."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ad_pipeline  # noqa: F401  (registers the df.anomaly accessors)
from ad_pipeline.duckdb import register_model
from ad_pipeline.engine.tabular import TabularDetector
from ad_pipeline.errors import BadArgument
from ad_pipeline.frames import tabular as tf


@pytest.fixture(scope="module")
def frame(mixed: dict[str, np.ndarray]) -> pd.DataFrame:
    df = pd.DataFrame({"key": np.arange(300), **mixed, "label": np.zeros(300, dtype=np.int64)})
    return df


@pytest.fixture(scope="module")
def model(mixed: dict[str, np.ndarray]) -> TabularDetector:
    return TabularDetector(contamination=0.05, n_estimators=50).fit(mixed)


def test_frame_to_columns_nulls() -> None:
    pdf = pd.DataFrame(
        {"i": pd.array([1, None, 3], dtype="Int64"), "s": ["a", None, "c"], "b": [True, False, True]}
    )
    cols = tf.frame_to_columns(pdf)
    assert np.isnan(cols["i"][1]) and cols["i"].dtype == np.float64
    assert cols["s"].tolist() == ["a", None, "c"]
    plc = tf.frame_to_columns(pl.from_pandas(pdf))
    np.testing.assert_array_equal(plc["i"], cols["i"])
    assert plc["s"].tolist() == ["a", None, "c"]
    np.testing.assert_array_equal(plc["b"], [1.0, 0.0, 1.0])


def test_default_features_skip_key_ignore_and_strings(frame: pd.DataFrame) -> None:
    assert tf.default_features(frame, key="key", ignore=["label"]) == ["a", "b"]
    assert tf.default_features(pl.from_pandas(frame), key="key", ignore=["label"]) == ["a", "b"]
    with pytest.raises(BadArgument, match="No numeric feature"):
        tf.default_features(frame[["key", "color"]], key="key")


def test_parity_pandas_polars_duckdb_engine(
    frame: pd.DataFrame, model: TabularDetector, mixed: dict[str, np.ndarray]
) -> None:
    expected = model.decision_function(mixed)
    expected_top = model.explain(mixed)
    pd_out = tf.score_outliers(frame, model)
    pl_out = tf.score_outliers(pl.from_pandas(frame), model)
    con = duckdb.connect()
    try:
        con.register("t_view", frame)
        con.execute("CREATE TABLE t AS SELECT * FROM t_view")
        register_model(con, "m", model)
        db = con.sql('SELECT m(a, b, color) AS anomaly FROM t ORDER BY "key"').fetchnumpy()["anomaly"]
        macro = con.sql("SELECT * FROM m_outliers('t') ORDER BY \"key\"").pl()
    finally:
        con.close()
    np.testing.assert_array_equal(pd_out["anomaly"].to_numpy(), expected)
    np.testing.assert_array_equal(pl_out["anomaly"].to_numpy(), expected)
    np.testing.assert_array_equal(db, expected)
    np.testing.assert_array_equal(macro["anomaly"].to_numpy(), expected)
    np.testing.assert_array_equal(macro["is_anomaly"].to_numpy(), expected < 0)
    assert macro.columns == [*frame.columns, "anomaly", "is_anomaly", "anomaly_top_features"]
    # top features identical everywhere
    want = expected_top.to_list()
    assert pd_out["anomaly_top_features"].tolist() == want
    assert pl_out["anomaly_top_features"].to_list() == want
    assert macro["anomaly_top_features"].to_list() == want
    # input rows kept
    pd.testing.assert_frame_equal(pd_out[frame.columns], frame)
    assert pl_out.select(frame.columns).equals(pl.from_pandas(frame))


def test_outliers_percent_anomalies(frame: pd.DataFrame) -> None:
    out = tf.outliers(frame, key="key", ignore=["label"], features=None, contamination=0.1)
    assert out.attrs["percent_anomalies"] == pytest.approx(out["is_anomaly"].mean())
    assert abs(out.attrs["percent_anomalies"] - 0.1) <= 0.02
    assert out["anomaly"].idxmin() == 0 and bool(out["is_anomaly"].iloc[0])  # the planted outlier
    assert out["anomaly_top_features"].iloc[0][0]["contribution"] > 0
    plo = tf.outliers(pl.from_pandas(frame), features=["a", "b", "color"], top=0)
    assert "anomaly_top_features" not in plo.columns
    assert plo["anomaly"].arg_min() == 0


def test_fit_outliers_refuses_bad_feature_lists(frame: pd.DataFrame) -> None:
    with pytest.raises(BadArgument, match="list of column names"):
        tf.fit_outliers(frame, features="a")
    with pytest.raises(BadArgument, match="both as features and as key"):
        tf.fit_outliers(frame, features=["a", "key"], key="key")
    with pytest.raises(BadArgument, match="lacks the column"):
        tf.fit_outliers(frame, features=["a", "zzz"])


def test_score_outliers_missing_feature(frame: pd.DataFrame, model: TabularDetector) -> None:
    with pytest.raises(BadArgument, match=r"lacks the feature\(s\) \['color'\]"):
        tf.score_outliers(frame.drop(columns="color"), model)
    with pytest.raises(BadArgument, match=r"lacks the feature\(s\) \['color'\]"):
        tf.score_outliers(pl.from_pandas(frame).drop("color"), model)


def test_detector_accepts_frames_directly(frame: pd.DataFrame, model: TabularDetector) -> None:
    want = model.decision_function(tf.frame_to_columns(frame, ["a", "b", "color"]))
    np.testing.assert_array_equal(model.decision_function(frame), want)
    np.testing.assert_array_equal(model.decision_function(pl.from_pandas(frame)), want)


def test_duckdb_nulls_and_path_and_names(model: TabularDetector, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "m.npz"
    model.save(path)
    con = duckdb.connect()
    try:
        register_model(con, "saved_model", str(path))
        got = con.sql("SELECT saved_model(NULL, 0.0, NULL) AS s").fetchall()[0][0]
        want = model.decision_function({"a": np.array([np.nan]), "b": np.array([0.0]),
                                        "color": np.array([None], dtype=object)})[0]
        assert got == want
        with pytest.raises(BadArgument, match="SQL identifier"):
            register_model(con, "bad name; DROP TABLE x", model)
        register_model(con, "saved_model", model)  # re-registering replaces
        assert con.sql("SELECT saved_model(10.0, 0.0, 'red')").fetchall()[0][0] == pytest.approx(
            model.decision_function({"a": np.array([10.0]), "b": np.array([0.0]),
                                     "color": np.array(["red"], dtype=object)})[0])
    finally:
        con.close()


def test_duckdb_odd_column_names() -> None:
    X = {'X.1': np.r_[np.zeros(40), 5.0], 'we"ird': np.r_[np.ones(40), 1.0]}
    m = TabularDetector(n_estimators=20).fit(X)
    con = duckdb.connect()
    try:
        con.execute('CREATE TABLE t AS SELECT unnest($1) AS "X.1", unnest($2) AS "we""ird"',
                    [X["X.1"].tolist(), X['we"ird'].tolist()])
        register_model(con, "odd", m)
        got = con.sql("SELECT anomaly FROM odd_outliers('t', top := 1)").fetchnumpy()["anomaly"]
        np.testing.assert_array_equal(got, m.decision_function(X))
        tops = con.sql("SELECT anomaly_top_features FROM odd_outliers('t', top := 1)").fetchall()
        assert all(len(t[0]) == 1 for t in tops)
    finally:
        con.close()


def test_one_row_and_custom_index(model: TabularDetector, frame: pd.DataFrame) -> None:
    one = frame.iloc[[7]].set_index(pd.Index(["row7"]))
    out = tf.score_outliers(one, model)
    assert out.index.tolist() == ["row7"]
    assert out["anomaly"].iloc[0] == model.decision_function(tf.frame_to_columns(frame.iloc[[7]], ["a", "b", "color"]))[0]
    assert len(out["anomaly_top_features"].iloc[0]) == 3
    empty = tf.score_outliers(frame.iloc[:0], model)
    assert len(empty) == 0 and list(empty.columns)[-3:] == ["anomaly", "is_anomaly", "anomaly_top_features"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(2, 30),
    seed=st.integers(0, 2**16),
    nan_share=st.sampled_from([0.0, 0.2]),
)
def test_parity_property(n: int, seed: int, nan_share: float) -> None:
    """Any small mixed frame with nulls: pandas, polars, DuckDB and the engine agree exactly."""
    rng = np.random.default_rng(seed)
    num = rng.normal(size=n) * 10.0 ** rng.integers(-3, 6)
    num[rng.random(n) < nan_share] = np.nan
    cat = rng.choice(np.array(["u", "v", "w"], dtype=object), n)
    cat[rng.random(n) < nan_share] = None
    cols = {"num": num, "cat": cat, "k": np.arange(n)}
    model = TabularDetector(n_estimators=10, categorical=["cat"]).fit({"num": num, "cat": cat})
    want = model.decision_function(cols)
    pdf = pd.DataFrame(cols)
    got_pd = tf.score_outliers(pdf, model, top=1)["anomaly"].to_numpy()
    got_pl = tf.score_outliers(pl.from_pandas(pdf), model, top=1)["anomaly"].to_numpy()
    con = duckdb.connect()
    try:
        con.register("t", pdf)
        register_model(con, "m", model)
        got_db = con.sql("SELECT anomaly FROM m_outliers('t', top := 1) ORDER BY k").fetchnumpy()["anomaly"]
    finally:
        con.close()
    np.testing.assert_array_equal(got_pd, want)
    np.testing.assert_array_equal(got_pl, want)
    np.testing.assert_array_equal(got_db, want)


def test_public_accessors_and_duckdb_reexport(frame: pd.DataFrame, mixed: dict[str, np.ndarray]) -> None:
    """df.anomaly (pandas accessor, polars namespace) and ad_pipeline.duckdb.register_model are wired."""
    import ad_pipeline.duckdb as add

    model = frame.anomaly.fit_outliers(key="key", ignore=["label"], features=["a", "b", "color"], n_estimators=50)
    pl_model = pl.from_pandas(frame).anomaly.fit_outliers(features=["a", "b", "color"], n_estimators=50)
    want = model.decision_function(mixed)
    np.testing.assert_array_equal(pl_model.decision_function(mixed), want)
    np.testing.assert_array_equal(frame.anomaly.score_outliers(model)["anomaly"].to_numpy(), want)
    np.testing.assert_array_equal(pl.from_pandas(frame).anomaly.score_outliers(model)["anomaly"].to_numpy(), want)
    out = frame.anomaly.outliers(key="key", ignore=["label"], contamination=0.1, top=2)
    assert out.attrs["percent_anomalies"] == pytest.approx(0.1, abs=0.02)
    assert len(out["anomaly_top_features"].iloc[0]) == 2
    pl_out = pl.from_pandas(frame).anomaly.outliers(key="key", ignore=["label"], contamination=0.1)
    np.testing.assert_array_equal(pl_out["anomaly"].to_numpy(), out["anomaly"].to_numpy())
    con = add.connect()
    try:
        add.register_model(con, "acc_model", model)
        con.register("f", frame)
        got = con.sql('SELECT acc_model(a, b, color) AS s FROM f ORDER BY "key"').fetchnumpy()["s"]
    finally:
        con.close()
    np.testing.assert_array_equal(got, want)
