"""``ddf.anomaly`` on a real dask.distributed LocalCluster: exactly the pandas accessor's rows and values."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import ad_pipeline  # noqa: E402,F401  (registers the accessors)
from ad_pipeline.errors import BadArgument, InvalidSeries  # noqa: E402
from tests.support.frames_data import long_columns  # noqa: E402
from tests.support.scale_out_data import KEYS, assert_same_rows, mixed_frame  # noqa: E402

KINDS = ["detect", "detect_last", "change_points"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return mixed_frame(500)


@pytest.mark.parametrize("kind", KINDS)
def test_500_mixed_series_give_exactly_the_pandas_accessors_rows(dask_client: Any, frame: pd.DataFrame, kind: str) -> None:
    want = getattr(frame.anomaly, kind)(by=KEYS, errors="coerce")
    lazy = getattr(dd.from_pandas(frame, npartitions=4).anomaly, kind)(by=KEYS, errors="coerce")
    got = lazy.compute()
    assert_same_rows(got, want, KEYS, "timestamp")
    assert list(lazy.columns) == list(want.columns)
    results = [c for c in want.columns if c not in frame.columns]
    assert lazy._meta[results].dtypes.to_dict() == got[results].dtypes.to_dict() == want[results].dtypes.to_dict()
    assert want["anomaly_error_code"].notna().any()


def test_index_and_other_columns_are_kept_and_errors_raise(dask_client: Any) -> None:
    df = pd.DataFrame(long_columns(n_series=5, n_points=40, short_series=True))
    ddf = dd.from_pandas(df, npartitions=3)
    got = ddf.anomaly.detect(["value", "value2"], by="key", errors="coerce", period=12).compute().sort_index()
    want = df.anomaly.detect(["value", "value2"], by="key", errors="coerce", period=12)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)  # dask makes the key column string[pyarrow]
    with pytest.raises(InvalidSeries, match=r"at least 12 points.*series 'short'"):
        ddf.anomaly.detect(by="key").compute()


def test_bad_arguments_are_refused_when_the_graph_is_built() -> None:
    ddf = dd.from_pandas(pd.DataFrame(long_columns(n_series=2, n_points=30)), npartitions=2)
    with pytest.raises(BadArgument, match="no row order"):
        ddf.anomaly.detect(timestamp=None, by="key")
    with pytest.raises(BadArgument, match="must be numeric"):
        ddf.anomaly.detect(value="key", by="key")
    with pytest.raises(BadArgument, match="'by' column 'nope'"):
        ddf.anomaly.change_points(by="nope")


def test_accessor_registers_when_dask_dataframe_is_imported() -> None:
    code = (
        "import sys, ad_pipeline\n"
        "print('dask.dataframe' in sys.modules)\n"
        "import dask.dataframe as dd\n"
        "print(hasattr(dd.DataFrame, 'anomaly'))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert out == ["False", "True"]
