"""Issue 18 in the frame and SQL adapters: one bad series never sinks the others with errors="coerce".

Before the fix one missing timestamp refused the whole frame / the whole SQL query, and a change-point
query with a granularity far finer than the data ran for tens of seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ad_pipeline.frames.pandas  # noqa: F401 - registers df.anomaly

N = 40
KINDS = ["detect", "detect_last", "change_points"]


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(18)
    return pd.DataFrame(
        {
            "host": np.repeat(["a", "b", "c"], N),
            "timestamp": np.tile(pd.date_range("2024-01-01", periods=N, freq="h"), 3),
            "value": 10 + np.sin(np.arange(3 * N) * 2 * np.pi / 12) + rng.normal(0, 0.1, 3 * N),
        }
    )


def _with_missing_timestamp() -> pd.DataFrame:
    df = _frame()
    df.loc[N + 5, "timestamp"] = pd.NaT  # one missing timestamp in series 'b'
    return df


def _errors_by_key(out: pd.DataFrame) -> dict[str, object]:
    return {k: (None if pd.isna(v) else v) for k, v in out.groupby("host")["anomaly_error"].first().items()}


@pytest.mark.parametrize("kind", KINDS)
def test_pandas_coerce_isolates_a_missing_timestamp(kind):
    out = getattr(_with_missing_timestamp().anomaly, kind)(by="host", errors="coerce")
    errs = _errors_by_key(out)
    assert errs["a"] is None and errs["c"] is None
    assert "missing timestamps" in errs["b"] and "series 'b'" in errs["b"]
    good = out[out["host"] != "b"]
    col = "is_change_point" if kind == "change_points" else "is_anomaly"
    assert good[col].notna().all()


@pytest.mark.parametrize("kind", KINDS)
def test_polars_coerce_isolates_a_missing_timestamp(kind):
    pl = pytest.importorskip("polars")
    import ad_pipeline.frames.polars  # noqa: F401

    out = getattr(pl.from_pandas(_with_missing_timestamp()).anomaly, kind)(by="host", errors="coerce").to_pandas()
    errs = _errors_by_key(out)
    assert errs["a"] is None and errs["c"] is None
    assert "missing timestamps" in errs["b"] and "series 'b'" in errs["b"]


def test_raise_still_refuses_a_missing_timestamp_naming_the_row():
    with pytest.raises(ValueError, match="row 45"):
        _with_missing_timestamp().anomaly.detect(by="host")


def test_frames_sort_timestamps_spanning_more_than_292_years():
    df = pd.DataFrame(
        {"timestamp": pd.to_datetime(["1678-02-01", *[f"2262-01-{d:02d}" for d in range(1, 13)]]), "value": np.arange(13.0)}
    )
    out = df.sample(frac=1, random_state=1).anomaly.detect(errors="coerce")
    assert out["anomaly_error_code"].unique().tolist() == ["InvalidGranularity"]
    assert "213282 grid points" in out["anomaly_error"].iloc[0]


# --------------------------------------------------------------------------- DuckDB


@pytest.fixture
def con():
    add = pytest.importorskip("ad_pipeline.duckdb")
    c = add.connect()
    c.register("src", _with_missing_timestamp())
    yield c
    c.close()


@pytest.mark.parametrize("macro", ["anomaly_detect", "anomaly_detect_last", "anomaly_change_points"])
def test_sql_coerce_isolates_a_missing_timestamp(con, macro):
    rows = con.sql(
        f"SELECT host, any_value(anomaly_error_code), any_value(anomaly_error) "
        f"FROM {macro}('src', key := 'host', ts := 'timestamp', errors := 'coerce') GROUP BY host ORDER BY host"
    ).fetchall()
    assert [r[1] for r in rows] == [None, "BadArgument", None]
    assert "missing timestamps" in rows[1][2] and "'host': b" in rows[1][2]


def test_sql_change_points_on_a_grid_far_finer_than_the_data(con):
    """3 hourly series of 100 points as 'secondly' (37 s before): refused per series at once."""
    con.execute(
        "CREATE TABLE hourly AS SELECT 'k' || (i // 100) AS key, TIMESTAMP '2024-01-01' + to_hours(i % 100) AS ts, "
        "sin(i)::DOUBLE AS value FROM range(300) t(i)"
    )
    rows = con.sql(
        "SELECT DISTINCT anomaly_error_code, anomaly_error FROM anomaly_change_points('hourly', "
        "granularity := 'secondly', errors := 'coerce') ORDER BY 2"
    ).fetchall()
    assert len(rows) == 3
    assert all(code == "InvalidSeries" and "356401 grid points for 100 points" in msg for code, msg in rows)
    with pytest.raises(Exception, match="InvalidSeries"):
        con.sql("SELECT * FROM anomaly_change_points('hourly', granularity := 'secondly')").fetchall()
