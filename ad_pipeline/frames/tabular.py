"""DataFrame side of tabular anomalies: pandas/polars frames <-> numpy columns, and the
``fit_outliers`` / ``score_outliers`` / ``outliers`` logic behind ``df.anomaly`` (pandas accessor
and polars namespace call these functions; they only register and forward).

Conversion only: every number comes from :class:`ad_pipeline.engine.tabular.TabularDetector`.

>>> import pandas as pd
>>> from ad_pipeline.frames.tabular import outliers
>>> df = pd.DataFrame({"key": range(6), "a": [1.0, 1.1, 0.9, 1.0, 1.05, 9.0]})
>>> out = outliers(df, key="key", contamination=0.2)
>>> out["is_anomaly"].tolist()
[False, False, False, False, False, True]
>>> out.attrs["percent_anomalies"]
0.16666666666666666
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.tabular.encoding import register_frame_reader
from ..errors import BadArgument, MissingDependency

if TYPE_CHECKING:  # imported when used: `import ad_pipeline.frames.pandas` stays light (no numba kernels)
    from ..engine.tabular import TabularDetector, TabularExplanation

__all__ = [
    "frame_to_columns",
    "default_features",
    "fit_outliers",
    "score_outliers",
    "outliers",
    "top_features_arrow",
    "arrow_column",
    "arrow_to_columns",
    "check_model",
    "model_scores",
    "SCORE_COLUMNS",
    "TabularOutlierMethods",
]

SCORE_COLUMNS = ("anomaly", "is_anomaly", "anomaly_top_features")


def _kind(df: Any) -> str:
    module = type(df).__module__.split(".")[0]
    if module == "pandas":
        return "pandas"
    if module == "polars":
        return "polars"
    raise BadArgument(f"Expected a pandas or polars DataFrame, got {type(df).__module__}.{type(df).__name__}.")


def _pandas_column(s: Any) -> np.ndarray:
    import pandas as pd

    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return s.to_numpy()
    return s.to_numpy(dtype=object, na_value=None)


def _polars_column(s: Any) -> np.ndarray:
    import polars as pl

    dtype = s.dtype
    if dtype.is_numeric() or dtype == pl.Boolean:
        return s.cast(pl.Float64).to_numpy()  # nulls -> NaN
    if dtype.is_temporal():
        return s.to_numpy()
    return s.cast(pl.String, strict=False).to_numpy().astype(object)  # nulls -> None


def frame_to_columns(df: Any, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The columns of a pandas/polars DataFrame as 1-D numpy arrays (name -> array).

    Numeric and boolean columns become float64 with NaN for nulls; string/categorical columns
    become object arrays with ``None`` for nulls; temporal columns stay datetime64/timedelta64.

    >>> import polars as pl
    >>> frame_to_columns(pl.DataFrame({"a": [1, None], "b": ["x", None]}))["b"].tolist()
    ['x', None]
    """
    kind = _kind(df)
    names = [str(c) for c in df.columns] if columns is None else list(columns)
    missing = [c for c in names if c not in set(map(str, df.columns))]
    if missing:
        raise BadArgument(f"The data lacks the column(s) {missing!r}; it has {[str(c) for c in df.columns]!r}.")
    convert = _pandas_column if kind == "pandas" else _polars_column
    if kind == "pandas":
        by_str = {str(c): c for c in df.columns}
        return {name: convert(df[by_str[name]]) for name in names}
    return {name: convert(df.get_column(name)) for name in names}


# TabularDetector().fit(df) / .score_samples(df) ...: the engine reads these frames with this adapter
register_frame_reader("pandas", frame_to_columns)
register_frame_reader("polars", frame_to_columns)


def arrow_column(a: Any, numeric: bool) -> np.ndarray:
    """One pyarrow (chunked) array as an engine column: float64 with NaN for nulls, or object with None."""
    import pyarrow as pa

    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if numeric:
        return np.asarray(a.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.asarray(a.to_pylist(), dtype=object)


def _arrow_numeric(t: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t)
    )


def arrow_to_columns(table: Any, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The columns of a pyarrow Table as engine columns (numeric/boolean -> float64, others -> object).

    >>> import pyarrow as pa
    >>> arrow_to_columns(pa.table({"a": [1, None], "s": ["x", None]}))["a"].tolist()
    [1.0, nan]
    """
    names = list(table.column_names) if names is None else list(names)
    missing = [c for c in names if c not in table.column_names]
    if missing:
        raise BadArgument(f"The data lacks the column(s) {missing!r}; it has {table.column_names!r}.")
    out = {}
    for name in names:
        col = table.column(name)
        out[name] = arrow_column(col, _arrow_numeric(col.type))
    return out


def arrow_default_features(table: Any, key: Sequence[str] = (), ignore: Iterable[str] = ()) -> list[str]:
    """Numeric (and boolean) columns of a pyarrow Table except the key and ``ignore`` columns."""
    skip = set(key) | set(ignore)
    features = [f.name for f in table.schema if _arrow_numeric(f.type) and f.name not in skip]
    if not features:
        raise BadArgument(
            f"No numeric feature column left after excluding key={list(key)!r} and ignore={sorted(set(ignore))!r}; "
            "pass features=[...] explicitly."
        )
    return features


def default_features(df: Any, key: str | None = None, ignore: Iterable[str] = ()) -> list[str]:
    """All numeric (and boolean) columns except ``key`` and ``ignore``."""
    kind = _kind(df)
    skip = set(ignore) | ({key} if key is not None else set())
    if kind == "pandas":
        import pandas as pd

        numeric = [
            str(c)
            for c, t in df.dtypes.items()
            if pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t)
        ]
    else:
        import polars as pl

        numeric = [name for name, t in df.schema.items() if t.is_numeric() or t == pl.Boolean]
    features = [c for c in numeric if c not in skip]
    if not features:
        raise BadArgument(
            f"No numeric feature column left after excluding key={key!r} and ignore={sorted(skip - {key})!r}; "
            "pass features=[...] explicitly."
        )
    return features


def fit_outliers(
    df: Any,
    features: Sequence[str] | None = None,
    key: str | None = None,
    ignore: Iterable[str] = (),
    **params: Any,
) -> TabularDetector:
    """Fit a :class:`TabularDetector` on the rows of ``df``.

    ``features`` default to every numeric column except ``key`` and ``ignore``; ``params`` go to
    :class:`TabularDetector` (``contamination``, ``n_estimators``, ``random_state`` ...).
    """
    if isinstance(features, str):
        raise BadArgument(f"The 'features' field must be a list of column names, got the string {features!r}.")
    if features is None:
        features = default_features(df, key=key, ignore=ignore)
    else:
        clash = [f for f in features if f == key or f in set(ignore)]
        if clash:
            raise BadArgument(f"The columns {clash!r} are listed both as features and as key/ignore.")
    from ..engine.tabular import TabularDetector

    return TabularDetector(**params).fit(frame_to_columns(df, list(features)))


def top_features_arrow(explanation: TabularExplanation) -> Any:
    """The explanation as a pyarrow ``list<struct<feature: string, contribution: double>>`` array."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingDependency.for_extra("pyarrow", "pandas") from None
    n, k = explanation.features.shape
    structs = pa.StructArray.from_arrays(
        [
            pa.array(explanation.features.reshape(-1).tolist(), type=pa.string()),
            pa.array(explanation.contributions.reshape(-1), type=pa.float64()),
        ],
        names=["feature", "contribution"],
    )
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32) if k else np.zeros(n + 1, np.int32))
    return pa.ListArray.from_arrays(offsets, structs)


def check_model(model: TabularDetector, names: Sequence[str]) -> None:
    """Refuse anything but a fitted detector whose features are all among the column ``names``."""
    from ..engine.tabular import TabularDetector

    if not isinstance(model, TabularDetector):
        raise BadArgument(f"The 'model' field must be a fitted TabularDetector, got {type(model).__name__}.")
    model._check_fitted()
    lacking = [f for f in model.feature_names_in_ if f not in set(names)]
    if lacking:
        raise BadArgument(f"The data lacks the feature(s) {lacking!r} the model was fitted on; it has {list(names)!r}.")


def model_scores(
    model: TabularDetector, columns: dict[str, np.ndarray], top: int
) -> tuple[np.ndarray, TabularExplanation | None]:
    """The ``anomaly`` scores of the rows (engine columns) and, if ``top``, their explanation."""
    anomaly = model.decision_function(columns)
    explanation = model.explain(columns, top=top) if top else None
    return anomaly, explanation


def _scores(df: Any, model: TabularDetector, top: int) -> tuple[np.ndarray, TabularExplanation | None]:
    names = [str(c) for c in df.columns]
    check_model(model, names)
    return model_scores(model, frame_to_columns(df, list(model.feature_names_in_)), top)


def score_outliers(df: Any, model: TabularDetector, *, top: int = 3) -> Any:
    """``df`` plus ``anomaly`` (score, < 0 = anomalous), ``is_anomaly`` and ``anomaly_top_features``.

    ``anomaly_top_features`` holds per row a list of ``{"feature", "contribution"}`` (the ``top``
    features of :meth:`TabularDetector.explain`); ``top=0`` leaves that column out (faster). For a
    pandas frame, ``attrs["percent_anomalies"]`` is the share of flagged rows.
    """
    kind = _kind(df)
    if not isinstance(top, int) or isinstance(top, bool) or top < 0:
        raise BadArgument(f"The 'top' field must be a non-negative integer, got {top!r}.")
    anomaly, explanation = _scores(df, model, top)
    flags = anomaly < 0
    share = float(flags.mean()) if len(flags) else 0.0
    if kind == "pandas":
        import pandas as pd

        out = df.copy()
        out["anomaly"] = anomaly
        out["is_anomaly"] = flags
        if explanation is not None:
            cells = np.empty(len(out), dtype=object)  # one list per cell (no broadcasting of nested lists)
            for i, row in enumerate(explanation.to_list()):
                cells[i] = row
            out["anomaly_top_features"] = pd.Series(cells, index=out.index, dtype=object)
        out.attrs["percent_anomalies"] = share
        return out
    import polars as pl

    new = [pl.Series("anomaly", anomaly, dtype=pl.Float64), pl.Series("is_anomaly", flags, dtype=pl.Boolean)]
    if explanation is not None:
        new.append(pl.Series("anomaly_top_features", pl.from_arrow(top_features_arrow(explanation))))
    return df.with_columns(new)


def outliers(
    df: Any,
    features: Sequence[str] | None = None,
    key: str | None = None,
    ignore: Iterable[str] = (),
    *,
    top: int = 3,
    **params: Any,
) -> Any:
    """Fit on ``df`` and score its rows in one go (the Nexosis session).

    pandas: ``attrs["percent_anomalies"]`` holds the share of anomalous rows. polars frames have
    no ``attrs``: take ``out["is_anomaly"].mean()``, or fit with :func:`fit_outliers` and read the
    model's ``percent_anomalies_``.
    """
    model = fit_outliers(df, features=features, key=key, ignore=ignore, **params)
    out = score_outliers(df, model, top=top)
    if _kind(df) == "pandas":
        out.attrs["percent_anomalies"] = model.percent_anomalies_
    return out


class TabularOutlierMethods:
    """The tabular methods of ``df.anomaly`` (pandas accessor, polars namespace); they read ``self._df``.

    >>> import numpy as np, pandas as pd
    >>> import ad_pipeline
    >>> df = pd.DataFrame({"key": range(6), "a": [1.0, 1.1, 0.9, 1.0, 1.05, 9.0]})
    >>> model = df.anomaly.fit_outliers(key="key", contamination=0.2)
    >>> df.anomaly.score_outliers(model)["is_anomaly"].tolist()
    [False, False, False, False, False, True]
    """

    _df: Any

    def fit_outliers(
        self, features: Sequence[str] | None = None, key: str | None = None, ignore: Iterable[str] = (), **params: Any
    ) -> TabularDetector:
        """Fit a :class:`~ad_pipeline.TabularDetector` on the rows (see :func:`fit_outliers`, docs/tabular.md)."""
        return fit_outliers(self._df, features=features, key=key, ignore=ignore, **params)

    def score_outliers(self, model: TabularDetector, *, top: int = 3) -> Any:
        """The rows plus ``anomaly``, ``is_anomaly``, ``anomaly_top_features`` (see :func:`score_outliers`)."""
        return score_outliers(self._df, model, top=top)

    def outliers(
        self,
        features: Sequence[str] | None = None,
        key: str | None = None,
        ignore: Iterable[str] = (),
        *,
        top: int = 3,
        **params: Any,
    ) -> Any:
        """Fit on the rows and score them at once (see :func:`outliers`)."""
        return outliers(self._df, features=features, key=key, ignore=ignore, top=top, **params)
