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
pandas/polars DataFrame (converted to columns by ``ad_pipeline._tabular_frames``; this file never
imports pandas or polars). Numeric columns are centred on their median and divided by their
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

import hashlib
import io
import json
import math
import numbers
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ..errors import BadArgument, InvalidModelArgument, InvalidModelFile, MissingDependency

__all__ = ["TabularDetector", "TabularExplanation", "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "ad_pipeline.tabular.isolation_forest"
FORMAT_VERSION = 1
_CHUNK = 65_536  # rows encoded and scored at once (bounds the memory of the float32 copy)
_EULER_GAMMA = 0.5772156649015329

# --------------------------------------------------------------------------------------------
# Parameters: declared once, checked in one place
# --------------------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


_PARAMS: dict[str, tuple[Any, str]] = {
    # name: (check, what is expected)
    "n_estimators": (lambda v: _is_int(v) and 1 <= v <= 100_000, "an integer between 1 and 100000"),
    "max_samples": (
        lambda v: v == "auto" or (_is_int(v) and v >= 2) or (_is_real(v) and not _is_int(v) and 0 < v <= 1),
        "'auto', an integer of at least 2 or a share in (0, 1]",
    ),
    "max_features": (
        lambda v: (_is_int(v) and v >= 1) or (_is_real(v) and not _is_int(v) and 0 < v <= 1),
        "a positive integer or a share in (0, 1]",
    ),
    "contamination": (
        lambda v: v == "auto" or (_is_real(v) and 0 < v <= 0.5),
        "'auto' or a share in (0, 0.5]",
    ),
    "random_state": (lambda v: v is None or (_is_int(v) and 0 <= v < 2**32), "None or an integer in [0, 2**32)"),
    "categorical": (
        lambda v: v is None or (not isinstance(v, str) and isinstance(v, Sequence)),
        "None or a list of column names",
    ),
}


def _check_params(params: Mapping[str, Any]) -> None:
    for name, value in params.items():
        check, expected = _PARAMS[name]
        try:
            ok = bool(check(value))
        except (TypeError, ValueError):  # e.g. an array compared with "auto"
            ok = False
        if not ok:
            raise InvalidModelArgument(f"The {name!r} field must be {expected}, got {value!r}.")


# --------------------------------------------------------------------------------------------
# Input: numpy array, mapping of columns or DataFrame -> ordered columns
# --------------------------------------------------------------------------------------------


def _as_columns(X: Any) -> tuple[list[str] | None, list[np.ndarray]]:
    """Return (names or None for a bare 2-D array, list of 1-D column arrays)."""
    if isinstance(X, Mapping):
        names = [str(k) for k in X]
        cols = [np.asarray(v) for v in X.values()]
    elif isinstance(X, np.ndarray) or isinstance(X, list | tuple):
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise BadArgument(f"The 'X' field must be a 2-D array (rows x features), got {arr.ndim} dimension(s).")
        return None, [arr[:, j] for j in range(arr.shape[1])]
    elif hasattr(X, "columns") and hasattr(X, "shape"):
        from ..frames.tabular import frame_to_columns  # the adapter layer knows pandas/polars

        cols_map = frame_to_columns(X)
        names, cols = list(cols_map), list(cols_map.values())
    else:
        raise BadArgument(
            "The 'X' field must be a 2-D numpy array, a mapping of columns or a pandas/polars DataFrame, "
            f"got {type(X).__name__}."
        )
    for name, col in zip(names, cols, strict=True):
        if col.ndim != 1:
            raise BadArgument(f"The column {name!r} must be 1-D, got {col.ndim} dimension(s).")
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        raise BadArgument(f"The columns of 'X' must have the same length, got lengths {sorted(lengths)}.")
    return names, cols


def _is_missing_obj(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, numbers.Real):
        return not math.isfinite(float(v))
    return isinstance(v, np.datetime64 | np.timedelta64) and bool(np.isnat(v))


_missing_ufunc = np.frompyfunc(_is_missing_obj, 1, 1)


def _numeric(col: np.ndarray, name: str) -> np.ndarray:
    """A float64 copy with NaN for missing values (NaN, None, +-inf, NaT)."""
    kind = col.dtype.kind
    if kind in "biuf":
        out = col.astype(np.float64)
    elif kind in "mM":
        out = col.astype("int64").astype(np.float64)
        out[np.isnat(col)] = np.nan
    else:
        obj = col.astype(object)
        miss = _missing_ufunc(obj).astype(bool) if len(obj) else np.zeros(0, bool)
        out = np.full(len(obj), np.nan)
        try:
            out[~miss] = obj[~miss].astype(np.float64)
        except (TypeError, ValueError):
            raise BadArgument(
                f"The column {name!r} must be numeric like the column the model was fitted on, "
                f"got values such as {obj[~miss][:3].tolist()!r}."
            ) from None
    out[~np.isfinite(out)] = np.nan
    return out


def _is_categorical(col: np.ndarray) -> bool:
    if col.dtype.kind in "biufmM":
        return False
    obj = col.astype(object)
    miss = _missing_ufunc(obj).astype(bool) if len(obj) else np.zeros(0, bool)
    return not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in obj[~miss])


def _categories(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(missing mask, str keys of the non-missing values)."""
    obj = col.astype(object)
    miss = _missing_ufunc(obj).astype(bool) if len(obj) else np.zeros(0, bool)
    return miss, obj[~miss].astype(str)


# --------------------------------------------------------------------------------------------
# The numeric core: flat trees, numba kernels
# --------------------------------------------------------------------------------------------


def _average_path_length(n: np.ndarray) -> np.ndarray:
    """c(n): average path length of an unsuccessful search in a binary search tree of n nodes."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    two = n == 2
    big = n > 2
    out[two] = 1.0
    out[big] = 2.0 * (np.log(n[big] - 1.0) + _EULER_GAMMA) - 2.0 * (n[big] - 1.0) / n[big]
    return out


# Tree layout (all trees concatenated, node ids global): ``child[node]`` is the left child and
# ``child[node] + 1`` the right one (nodes renumbered breadth-first so siblings are adjacent),
# ``-1`` marks a leaf; ``feature`` and ``threshold`` (float32, rounded down, see _import_forest)
# describe the split "go right when x[feature] > threshold"; ``value[leaf]`` is the leaf depth plus
# c(samples in the leaf). Rows are walked in blocks, tree after tree, so one tree's nodes stay in
# the CPU cache while a block of rows goes through it (as scikit-learn does, tree by tree).
_BLOCK = 512


@numba.njit(parallel=True, cache=True, nogil=True)
def _path_sums(X, child, feature, threshold, value, roots):  # pragma: no cover - compiled
    n = X.shape[0]
    out = np.zeros(n, dtype=np.float64)
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for b in numba.prange(n_blocks):
        lo = b * _BLOCK
        hi = min(n, lo + _BLOCK)
        for t in range(roots.shape[0]):
            root = roots[t]
            for i in range(lo, hi):
                node = root
                while child[node] != -1:
                    node = child[node] + (X[i, feature[node]] > threshold[node])
                out[i] += value[node]
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _path_sums_substituted(X, ref, child, feature, threshold, value, roots):  # pragma: no cover
    """Per row: the path-length sum, and for every feature j the sum with x[j] replaced by ref[j].

    Only trees whose path for the row splits on j can change, so each tree is re-walked once
    per distinct feature on the row's path (<= depth), not once per feature.
    """
    n, d = X.shape
    base = np.zeros(n, dtype=np.float64)
    subst = np.zeros((n, d), dtype=np.float64)
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for b in numba.prange(n_blocks):
        lo = b * _BLOCK
        hi = min(n, lo + _BLOCK)
        stamp = np.full(d, -1, dtype=np.int64)
        key = 0
        for t in range(roots.shape[0]):
            root = roots[t]
            for i in range(lo, hi):
                key += 1
                node = root
                while child[node] != -1:
                    node = child[node] + (X[i, feature[node]] > threshold[node])
                leaf_value = value[node]
                base[i] += leaf_value
                node = root  # re-walk once for each distinct feature met on the path
                while child[node] != -1:
                    j = feature[node]
                    if stamp[j] != key:
                        stamp[j] = key
                        m = root
                        while child[m] != -1:
                            f = feature[m]
                            v = ref[j] if f == j else X[i, f]
                            m = child[m] + (v > threshold[m])
                        subst[i, j] += value[m] - leaf_value
                    node = child[node] + (X[i, j] > threshold[node])
        for i in range(lo, hi):
            for j in range(d):
                subst[i, j] += base[i]
    return base, subst


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
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> TabularDetector:
        for name, value in params.items():
            if name not in _PARAMS:
                raise InvalidModelArgument(
                    f"Unknown parameter {name!r} for TabularDetector; expected one of {sorted(_PARAMS)}."
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
        _check_params(self.get_params())
        try:
            import sklearn
            from sklearn.ensemble import IsolationForest
        except ImportError:  # pragma: no cover - depends on the environment
            raise MissingDependency.for_extra("scikit-learn", "tabular") from None

        names, cols = _as_columns(X)
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
            if name in forced or _is_categorical(col):
                miss, keys = _categories(col)
                uniq, counts = np.unique(keys, return_counts=True)
                n = len(col)
                vocab.append(
                    {"values": uniq.tolist(), "shares": (counts / n).tolist(), "missing_share": float(miss.sum() / n)}
                )
                kinds.append("categorical")
                center.append(0.0)
                scale.append(1.0)
            else:
                x = _numeric(col, name)
                c, s = _robust_center_scale(x)
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
            "ad_pipeline": _package_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
        }
        self.offset_ = -0.5
        train = self.score_samples(_Encoded(Z))
        if self.contamination != "auto":
            self.offset_ = float(np.percentile(train, 100.0 * float(self.contamination)))
        self.percent_anomalies_ = float(np.mean(train < self.offset_))
        return self

    def _import_forest(self, forest: Any) -> None:
        """Copy the fitted trees into the flat arrays the kernels walk (see the layout above)."""
        childs, feats, thrs, vals, roots = [], [], [], [], []
        start = 0
        for est, est_features in zip(forest.estimators_, forest.estimators_features_, strict=True):
            tree = est.tree_
            left, right = tree.children_left, tree.children_right
            n = tree.node_count
            order = np.empty(n, dtype=np.int64)  # breadth-first: the two children of a node adjacent
            depth = np.zeros(n, dtype=np.float64)
            order[0], head, tail = 0, 0, 1
            while head < tail:
                node = order[head]
                head += 1
                if left[node] != -1:
                    order[tail], order[tail + 1] = left[node], right[node]
                    depth[left[node]] = depth[right[node]] = depth[node] + 1.0
                    tail += 2
            new_id = np.empty(n, dtype=np.int64)
            new_id[order] = np.arange(n)
            leaf = left[order] == -1
            childs.append(np.where(leaf, -1, new_id[np.maximum(left[order], 0)] + start))
            feats.append(np.where(leaf, -1, np.asarray(est_features)[np.maximum(tree.feature[order], 0)]))
            # rows are float32 (as in scikit-learn); for a float32 x, "x > t" equals "x > t32" with
            # t32 the largest float32 <= t, so storing t32 keeps the splits exact
            t64 = np.where(leaf, 0.0, tree.threshold[order])
            t32 = t64.astype(np.float32)
            up = t32.astype(np.float64) > t64
            t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
            thrs.append(t32)
            vals.append(np.where(leaf, depth[order] + _average_path_length(tree.n_node_samples[order]), 0.0))
            roots.append(start)
            start += n
        self._child = np.concatenate(childs).astype(np.int32)
        self._feature = np.concatenate(feats).astype(np.int32)
        self._threshold = np.concatenate(thrs).astype(np.float32)
        self._value = np.concatenate(vals).astype(np.float64)
        self._roots = np.array(roots, dtype=np.int32)
        self.max_samples_ = int(forest.max_samples_)

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
        if isinstance(X, _Encoded):
            return []
        names, cols = _as_columns(X)
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
                x = (_numeric(part, str(self.feature_names_in_[j])) - self._center[j]) / self._scale[j]
                x[np.isnan(x)] = 0.0  # missing -> the training median
                Z[:, j] = x
            else:
                miss, keys = _categories(part)
                uniq, inv = np.unique(keys, return_inverse=True)
                lookup = dict(zip(voc["values"], voc["shares"], strict=True))
                shares = np.array([lookup.get(u, 0.0) for u in uniq.tolist()], dtype=np.float64)
                x = np.full(len(part), voc["missing_share"], dtype=np.float64)
                x[~miss] = shares[inv] if len(inv) else 0.0
                Z[:, j] = x
        return Z

    def _chunks(self, X: Any):
        """Yield encoded float32 blocks of at most _CHUNK rows."""
        if isinstance(X, _Encoded):
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
        denominator = len(self._roots) * float(_average_path_length(np.array([self.max_samples_]))[0])
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
        parts = [self._to_score(_path_sums(Z, *self._trees())) for Z in self._chunks(X)]
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
        if not _is_int(top) or top < 1:
            raise BadArgument(f"The 'top' field must be a positive integer, got {top!r}.")
        k = min(int(top), self.n_features_in_)
        contrib_parts = []
        for Z in self._chunks(X):
            base, subst = _path_sums_substituted(Z, self._ref, *self._trees())
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
        self._check_fitted()
        arrays: dict[str, np.ndarray] = {
            "child": self._child,
            "feature": self._feature,
            "threshold": self._threshold,
            "value": self._value,
            "roots": self._roots,
            "center": self._center,
            "scale": self._scale,
        }
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "versions": self.versions_,
            "params": {k: (list(v) if k == "categorical" and v is not None else v) for k, v in self.get_params().items()},
            "feature_names": self.feature_names_in_.tolist(),
            "kinds": self._kinds,
            "vocab": self._vocab,
            "offset": self.offset_,
            "max_samples": self.max_samples_,
            "percent_anomalies": self.percent_anomalies_,
        }
        meta["sha256"] = _digest(meta, arrays)
        buf = io.BytesIO()
        members = {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), **arrays}
        np.savez_compressed(buf, **members)  # type: ignore[arg-type]
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-model-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

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
        path = os.fspath(path)
        with open(path, "rb") as f:  # a missing file stays a FileNotFoundError
            data = f.read()
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except Exception as exc:  # noqa: BLE001 - zip/zlib/npy errors of every kind mean "not a model"
            raise InvalidModelFile(f"The file {path!r} is not an ad_pipeline tabular model: {exc}") from None
        return cls._from_arrays(arrays, path)

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray], path: str) -> TabularDetector:
        def bad(why: str) -> InvalidModelFile:
            return InvalidModelFile(f"The file {path!r} is not a valid ad_pipeline tabular model: {why}.")

        meta_arr = arrays.pop("meta", None)
        if meta_arr is None or meta_arr.dtype != np.uint8 or meta_arr.ndim != 1:
            raise InvalidModelFile(f"The file {path!r} is not an ad_pipeline tabular model: it has no metadata.")
        try:
            meta = json.loads(meta_arr.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad(f"unreadable metadata ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise InvalidModelFile(f"The file {path!r} is not an ad_pipeline tabular model (format {meta.get('format')!r}).")
        if meta.get("format_version") != FORMAT_VERSION:
            made_by = (meta.get("versions") or {}).get("ad_pipeline", "?")
            raise InvalidModelFile(
                f"The file {path!r} was written by an incompatible version (format version "
                f"{meta.get('format_version')!r}, ad_pipeline {made_by}); this version reads format version "
                f"{FORMAT_VERSION}. Refit the model or load it with the version that wrote it."
            )
        expected = {"child", "feature", "threshold", "value", "roots", "center", "scale"}
        if set(arrays) != expected:
            raise bad(f"arrays {sorted(arrays)} instead of {sorted(expected)}")
        stored = meta.pop("sha256", None)
        if stored != _digest(meta, arrays):
            raise bad("its checksum does not match its content (the file was modified or truncated)")
        try:
            m = cls(**meta["params"])
            _check_params(m.get_params())
            names = [str(n) for n in meta["feature_names"]]
            d = len(names)
            m.feature_names_in_ = np.array(names, dtype=object)
            m.n_features_in_ = d
            m._kinds = list(meta["kinds"])
            m._vocab = list(meta["vocab"])
            m.offset_ = float(meta["offset"])
            m.max_samples_ = int(meta["max_samples"])
            m.percent_anomalies_ = float(meta["percent_anomalies"])
            m.versions_ = dict(meta["versions"])
            m._child = arrays["child"].astype(np.int32)
            m._feature = arrays["feature"].astype(np.int32)
            m._threshold = arrays["threshold"].astype(np.float32)
            m._value = arrays["value"].astype(np.float64)
            m._roots = arrays["roots"].astype(np.int32)
            m._center = arrays["center"].astype(np.float64)
            m._scale = arrays["scale"].astype(np.float64)
            for j, voc in enumerate(m._vocab):
                if (voc is None) != (m._kinds[j] == "numeric") or (
                    voc is not None and len(voc["values"]) != len(voc["shares"])
                ):
                    raise ValueError(f"feature {j} has an inconsistent encoding")
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"inconsistent metadata ({exc})") from None
        _check_tree_arrays(m, d, bad)
        m._ref = m._reference_values()
        return m


class _Encoded:
    """Already-encoded rows (used by fit to score the training rows without re-encoding)."""

    def __init__(self, Z: np.ndarray) -> None:
        self.Z = Z


def _robust_center_scale(x: np.ndarray) -> tuple[float, float]:
    """Median, and inter-quartile range (falling back to MAD, std, then 1 when it is 0)."""
    finite = x[~np.isnan(x)]
    if finite.size == 0:
        return 0.0, 1.0
    med = float(np.median(finite))
    q25, q75 = np.percentile(finite, [25, 75])
    for s in (q75 - q25, 1.4826 * np.median(np.abs(finite - med)), np.std(finite)):
        if s > 0 and math.isfinite(s):
            return med, float(s)
    return med, 1.0


def _check_tree_arrays(m: TabularDetector, d: int, bad: Any) -> None:
    """Structural checks so the compiled kernels can only ever read inside the arrays and stop."""
    n = len(m._child)
    arrays = (m._child, m._feature, m._threshold, m._value)
    if any(a.ndim != 1 or len(a) != n for a in arrays) or m._roots.ndim != 1 or len(m._roots) == 0:
        raise bad("tree arrays of inconsistent shapes")
    if m._center.shape != (d,) or m._scale.shape != (d,) or len(m._kinds) != d or len(m._vocab) != d:
        raise bad("per-feature arrays do not match the feature names")
    idx = np.arange(n)
    internal = m._child != -1
    if (
        np.any((m._roots < 0) | (m._roots >= n))
        or np.any(internal & ((m._child <= idx) | (m._child >= n - 1)))  # children after the parent
        or np.any(~internal & (m._child != -1))
        or np.any(internal & ((m._feature < 0) | (m._feature >= d)))
        or not np.all(np.isfinite(m._value))
        or not np.all(np.isfinite(m._scale) & (m._scale > 0))
    ):
        raise bad("tree arrays out of range")


def _digest(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode("utf-8"))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _package_version() -> str:
    from .. import __version__

    return __version__
