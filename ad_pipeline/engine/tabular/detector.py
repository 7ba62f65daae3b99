"""Tabular anomalies (the Nexosis "anomalies" job): fit an isolation forest on rows, score rows.

:class:`TabularDetector` follows the scikit-learn conventions (keyword-only parameters, ``fit``,
``score_samples``, ``decision_function``, ``predict``). The trees are grown by scikit-learn's
:class:`~sklearn.ensemble.IsolationForest` (the ``[tabular]`` extra, imported only by ``fit``);
the fitted trees are then copied into flat numpy arrays and scored by a small numba kernel. So:

- a fitted or loaded model scores without scikit-learn and gives the scores scikit-learn gives
  (same path lengths, same formula; a test checks equality to 1e-12);
- :meth:`TabularDetector.save` writes those arrays plus JSON metadata (an ``.npz`` read with
  ``allow_pickle=False``): loading a file never executes code, and does not depend on the
  scikit-learn version.

Input ``X``: a 2-D numeric numpy array, a mapping ``{name: 1-D array}`` (the columns), or a
pandas/polars DataFrame (read by the reader its adapter registered, see
:mod:`~ad_pipeline.engine.tabular.encoding`; the engine never imports pandas or polars). Numeric columns are centred on their median and divided by their
inter-quartile range; string (object) columns are encoded by the share of their category in the
training rows (a rare or unseen category is extreme); missing values (NaN, None, +-inf) are
replaced by the training median (numeric) or count as a category of their own (strings).

>>> import numpy as np
>>> from ad_pipeline.engine.tabular import TabularDetector
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(500, 3)); X[0] = [0.0, 8.0, 0.0]
>>> model = TabularDetector(contamination=0.01).fit(X)
>>> bool(model.predict(X)[0]), model.decision_function(X[:1]).round(2).tolist()
(True, [-0.02])
>>> model.explain(X[:1], top=1).features.tolist()
[['x1']]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import BadArgument, InvalidModelArgument, MissingDependency
from .encoding import (
    PARAMS,
    Encoded,
    as_columns,
    categories,
    check_params,
    is_categorical,
    is_int,
    numeric_column,
    robust_center_scale,
)
from .forest import average_path_length, flatten_forest, path_sums, path_sums_substituted
from .persistence import load_model, package_version, save_model

__all__ = ["TabularDetector", "TabularExplanation"]

_CHUNK = 65_536  # rows encoded and scored at once (bounds the memory of the float32 copy)


@dataclass(frozen=True)
class TabularExplanation:
    """What :meth:`TabularDetector.explain` returns, rows aligned with the input.

    ``features`` (n, top) feature names, ``indices`` (n, top) their column positions,
    ``contributions`` (n, top) floats, largest first: how much the row's ``decision_function``
    rises (towards normal) when that feature alone is replaced by its typical training value.
    A positive contribution makes the row more anomalous; ``<= 0`` means it does not.
    """

    features: np.ndarray
    indices: np.ndarray
    contributions: np.ndarray

    def to_list(self) -> list[list[dict[str, Any]]]:
        """Per row, ``[{"feature": name, "contribution": value}, ...]`` (plain Python)."""
        names = self.features.tolist()
        vals = self.contributions.tolist()
        return [
            [{"feature": f, "contribution": c} for f, c in zip(fr, vr, strict=True)]
            for fr, vr in zip(names, vals, strict=True)
        ]


# --------------------------------------------------------------------------------------------
# The detector
# --------------------------------------------------------------------------------------------


class TabularDetector:
    """Isolation-forest anomaly detector for rows of numeric and categorical features.

    Parameters
    ----------
    n_estimators : int, default 200
        Number of trees. 200 rather than scikit-learn's 100: the scores vary less from one seed
        to another, and fitting stays cheap (each tree sees ``max_samples`` rows).
    max_samples : "auto", int or float, default "auto"
        Rows drawn (without replacement) to grow each tree; ``"auto"`` = ``min(256, n_rows)``.
    max_features : int or float, default 1.0
        Features (count or share) drawn for each tree.
    contamination : "auto" or float in (0, 0.5], default "auto"
        ``"auto"``: a row is anomalous when its isolation score exceeds 0.5 (the paper's
        threshold). A share: the threshold is set so that this share of the training rows is
        anomalous.
    random_state : int or None, default 0
        Seed of the trees; a fixed default makes scores reproducible.
    categorical : list of str or None, default None
        Columns to treat as categorical even if numeric (e.g. integer codes). String columns are
        always categorical.

    Attributes
    ----------
    feature_names_in_ : numpy array of str
    n_features_in_ : int
    offset_ : float
        ``decision_function = score_samples - offset_``.
    percent_anomalies_ : float
        Share of the training rows flagged (the Nexosis ``percentAnomalies``).
    versions_ : dict
        Library versions the model was fitted with.

    Examples
    --------
    >>> import numpy as np
    >>> X = {"a": np.r_[np.zeros(99), 50.0], "b": np.array(["x"] * 99 + ["y"], dtype=object)}
    >>> m = TabularDetector(contamination=0.01).fit(X)
    >>> np.flatnonzero(m.predict(X)).tolist()
    [99]
    """

    def __init__(
        self,
        *,
        n_estimators: int = 200,
        max_samples: int | float | str = "auto",
        max_features: int | float = 1.0,
        contamination: float | str = "auto",
        random_state: int | None = 0,
        categorical: Sequence[str] | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.contamination = contamination
        self.random_state = random_state
        self.categorical = categorical

    # -- scikit-learn plumbing -----------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PARAMS}

    def set_params(self, **params: Any) -> TabularDetector:
        for name, value in params.items():
            if name not in PARAMS:
                raise InvalidModelArgument(
                    f"Unknown parameter {name!r} for TabularDetector; expected one of {sorted(PARAMS)}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"TabularDetector({args})"

    def _check_fitted(self) -> None:
        if not hasattr(self, "_roots"):
            raise BadArgument("This TabularDetector is not fitted yet; call fit(X) or TabularDetector.load(path).")

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> TabularDetector:
        """Grow the forest on the rows of ``X`` (``y`` is ignored, as in scikit-learn).

        >>> import numpy as np
        >>> TabularDetector().fit(np.arange(20.0).reshape(10, 2)).n_features_in_
        2
        """
        check_params(self.get_params())
        try:
            import sklearn
            from sklearn.ensemble import IsolationForest
        except ImportError:  # pragma: no cover - depends on the environment
            raise MissingDependency.for_extra("scikit-learn", "tabular") from None

        names, cols = as_columns(X)
        if not cols or len(cols[0]) < 2:
            raise BadArgument(
                f"The 'X' field needs at least 2 rows and 1 feature, got {len(cols[0]) if cols else 0} row(s) "
                f"and {len(cols)} feature(s)."
            )
        names = names if names is not None else [f"x{j}" for j in range(len(cols))]
        if len(set(names)) != len(names):
            raise BadArgument(f"The feature names must be unique, got {names!r}.")
        forced = set(self.categorical or ())
        unknown = forced - set(names)
        if unknown:
            raise BadArgument(f"The 'categorical' columns {sorted(unknown)!r} are not among the features {names!r}.")

        kinds: list[str] = []
        center: list[float] = []
        scale: list[float] = []
        vocab: list[dict[str, Any] | None] = []
        for name, col in zip(names, cols, strict=True):
            if name in forced or is_categorical(col):
                miss, keys = categories(col)
                uniq, counts = np.unique(keys, return_counts=True)
                n = len(col)
                vocab.append(
                    {"values": uniq.tolist(), "shares": (counts / n).tolist(), "missing_share": float(miss.sum() / n)}
                )
                kinds.append("categorical")
                center.append(0.0)
                scale.append(1.0)
            else:
                x = numeric_column(col, name)
                c, s = robust_center_scale(x)
                kinds.append("numeric")
                center.append(c)
                scale.append(s)
                vocab.append(None)
        self.feature_names_in_ = np.array(names, dtype=object)
        self.n_features_in_ = len(names)
        self._kinds = kinds
        self._center = np.array(center, dtype=np.float64)
        self._scale = np.array(scale, dtype=np.float64)
        self._vocab = vocab
        self._ref = self._reference_values()

        Z = self._encode(cols, 0, len(cols[0]))
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            contamination="auto",
            random_state=self.random_state,
        ).fit(Z)
        self._import_forest(forest)
        self.versions_ = {
            "ad_pipeline": package_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        }
        self.offset_ = -0.5
        train = self.score_samples(Encoded(Z))
        if self.contamination != "auto":
            self.offset_ = float(np.percentile(train, 100.0 * float(self.contamination)))
        self.percent_anomalies_ = float(np.mean(train < self.offset_))
        return self

    def _import_forest(self, forest: Any) -> None:
        """Copy the fitted trees into the flat arrays the kernels walk (see :mod:`.forest`)."""
        arrays, self.max_samples_ = flatten_forest(forest)
        self._child, self._feature, self._threshold = arrays["child"], arrays["feature"], arrays["threshold"]
        self._value, self._roots = arrays["value"], arrays["roots"]

    def _reference_values(self) -> np.ndarray:
        """The typical value of each encoded feature (explain substitutes it)."""
        ref = np.zeros(self.n_features_in_, dtype=np.float64)  # numeric: the median, 0 once scaled
        for j, voc in enumerate(self._vocab):
            if voc is not None:
                ref[j] = max([*voc["shares"], voc["missing_share"]])
        return ref.astype(np.float32)

    # -- encoding -----------------------------------------------------------------------------
    def _select(self, X: Any) -> list[np.ndarray]:
        """The model's feature columns out of X, in the fitted order."""
        if isinstance(X, Encoded):
            return []
        names, cols = as_columns(X)
        if names is None:
            if len(cols) != self.n_features_in_:
                raise BadArgument(
                    f"The 'X' array must have {self.n_features_in_} columns (features "
                    f"{self.feature_names_in_.tolist()!r}), got {len(cols)}."
                )
            return cols
        by_name = dict(zip(names, cols, strict=True))
        missing = [f for f in self.feature_names_in_ if f not in by_name]
        if missing:
            raise BadArgument(
                f"The data lacks the feature(s) {missing!r} the model was fitted on; it has {names!r}."
            )
        return [by_name[f] for f in self.feature_names_in_]

    def _encode(self, cols: list[np.ndarray], start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) encoded: a C-contiguous float32 (rows x features) matrix."""
        Z = np.empty((stop - start, len(cols)), dtype=np.float32)
        for j, col in enumerate(cols):
            part = col[start:stop]
            voc = self._vocab[j]
            if voc is None:
                x = (numeric_column(part, str(self.feature_names_in_[j])) - self._center[j]) / self._scale[j]
                x[np.isnan(x)] = 0.0  # missing -> the training median
                Z[:, j] = x
            else:
                miss, keys = categories(part)
                uniq, inv = np.unique(keys, return_inverse=True)
                lookup = dict(zip(voc["values"], voc["shares"], strict=True))
                shares = np.array([lookup.get(u, 0.0) for u in uniq.tolist()], dtype=np.float64)
                x = np.full(len(part), voc["missing_share"], dtype=np.float64)
                x[~miss] = shares[inv] if len(inv) else 0.0
                Z[:, j] = x
        return Z

    def _chunks(self, X: Any):
        """Yield encoded float32 blocks of at most _CHUNK rows."""
        if isinstance(X, Encoded):
            yield X.Z
            return
        cols = self._select(X)
        n = len(cols[0]) if cols else 0
        if n == 0:
            yield np.empty((0, self.n_features_in_), dtype=np.float32)
            return
        for start in range(0, n, _CHUNK):
            yield self._encode(cols, start, min(n, start + _CHUNK))

    def _to_score(self, path_sums: np.ndarray) -> np.ndarray:
        denominator = len(self._roots) * float(average_path_length(np.array([self.max_samples_]))[0])
        if denominator == 0:
            return -np.ones_like(path_sums)
        return -(2.0 ** (-(path_sums / denominator)))

    def _trees(self) -> tuple[np.ndarray, ...]:
        return self._child, self._feature, self._threshold, self._value, self._roots

    # -- scoring ------------------------------------------------------------------------------
    def score_samples(self, X: Any) -> np.ndarray:
        """The isolation score of each row, in [-1, 0): the lower, the more abnormal.

        Identical to scikit-learn's ``IsolationForest.score_samples`` for the same trees.

        >>> import numpy as np
        >>> m = TabularDetector().fit(np.arange(40.0).reshape(20, 2))
        >>> m.score_samples(np.arange(40.0).reshape(20, 2)).shape
        (20,)
        """
        self._check_fitted()
        parts = [self._to_score(path_sums(Z, *self._trees())) for Z in self._chunks(X)]
        return np.concatenate(parts) if parts else np.empty(0)

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples - offset_``: negative = anomalous (the Nexosis ``anomaly`` score).

        >>> import numpy as np
        >>> X = np.r_[np.zeros((50, 1)), [[9.0]]]
        >>> bool(TabularDetector().fit(X).decision_function(X)[-1] < 0)
        True
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X: Any) -> np.ndarray:
        """True where the row is anomalous (``decision_function < 0``).

        >>> import numpy as np
        >>> X = np.r_[np.zeros((50, 1)), [[9.0]]]
        >>> TabularDetector().fit(X).predict(X)[-2:].tolist()
        [False, True]
        """
        return self.decision_function(X) < 0

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X).predict(X)``."""
        return self.fit(X).predict(X)

    def explain(self, X: Any, top: int = 3) -> TabularExplanation:
        """Per row, the ``top`` features that make it most anomalous, with their contribution.

        The contribution of feature j to row x is ``decision_function(x with x_j := typical_j) -
        decision_function(x)``: how much more normal the row looks when that feature alone takes its
        typical training value (the median for a numeric feature, the most frequent category for a
        categorical one). Computed exactly on the forest, re-walking only the trees whose path for
        the row splits on j.

        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> X = rng.normal(size=(300, 4)); X[0, 2] = 9.0
        >>> e = TabularDetector().fit(X).explain(X[:1], top=2)
        >>> e.features[0, 0], bool(e.contributions[0, 0] > e.contributions[0, 1])
        ('x2', True)
        """
        self._check_fitted()
        if not is_int(top) or top < 1:
            raise BadArgument(f"The 'top' field must be a positive integer, got {top!r}.")
        k = min(int(top), self.n_features_in_)
        contrib_parts = []
        for Z in self._chunks(X):
            base, subst = path_sums_substituted(Z, self._ref, *self._trees())
            contrib_parts.append(self._to_score(subst) - self._to_score(base)[:, None])
        contrib = np.concatenate(contrib_parts) if contrib_parts else np.empty((0, self.n_features_in_))
        # stable descending order: ties keep the column order
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
        return TabularExplanation(
            features=self.feature_names_in_[order],
            indices=order.astype(np.int64),
            contributions=np.take_along_axis(contrib, order, axis=1),
        )

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to ``path`` (an ``.npz`` of arrays plus JSON metadata).

        The file holds no pickled object: :meth:`load` reads it with ``allow_pickle=False``.

        >>> import numpy as np, tempfile, os
        >>> m = TabularDetector().fit(np.arange(40.0).reshape(20, 2))
        >>> p = os.path.join(tempfile.mkdtemp(), "model.npz"); m.save(p)
        >>> bool((TabularDetector.load(p).score_samples(np.ones((1, 2))) == m.score_samples(np.ones((1, 2)))).all())
        True
        """
        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TabularDetector:
        """Read a model written by :meth:`save`; never executes code from the file.

        Raises :class:`~ad_pipeline.errors.InvalidModelFile` for a file that is not such a model,
        was written by an incompatible format version, or fails its checksum (tampered, truncated).

        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "junk.npz"); _ = open(p, "wb").write(b"not a model")
        >>> TabularDetector.load(p)
        Traceback (most recent call last):
        ...
        ad_pipeline.errors.InvalidModelFile: The file ... is not an ad_pipeline tabular model: ...
        """
        return load_model(cls, path)
