"""The isolation forest as flat arrays, and the numba kernels that walk it.

scikit-learn's :class:`~sklearn.ensemble.IsolationForest` grows the trees (``fit`` only);
:func:`flatten_forest` copies them into the arrays below, which the kernels score without
scikit-learn, giving the scores scikit-learn gives (same path lengths, same formula).

>>> average_path_length(np.array([1, 2, 256])).round(3).tolist()
[0.0, 1.0, 10.245]
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["average_path_length", "path_sums", "path_sums_substituted", "flatten_forest"]

_EULER_GAMMA = 0.5772156649015329


def average_path_length(n: np.ndarray) -> np.ndarray:
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
# ``-1`` marks a leaf; ``feature`` and ``threshold`` (float32, rounded down, see flatten_forest)
# describe the split "go right when x[feature] > threshold"; ``value[leaf]`` is the leaf depth plus
# c(samples in the leaf). Rows are walked in blocks, tree after tree, so one tree's nodes stay in
# the CPU cache while a block of rows goes through it (as scikit-learn does, tree by tree).
_BLOCK = 512


@numba.njit(parallel=True, cache=True, nogil=True)
def path_sums(X, child, feature, threshold, value, roots):  # pragma: no cover - compiled
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
def path_sums_substituted(X, ref, child, feature, threshold, value, roots):  # pragma: no cover
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



def flatten_forest(forest: Any) -> tuple[dict[str, np.ndarray], int]:
    """The fitted trees of a scikit-learn ``IsolationForest`` as the flat arrays the kernels walk
    (``child``, ``feature``, ``threshold``, ``value``, ``roots``), and the forest's ``max_samples_``."""
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
        vals.append(np.where(leaf, depth[order] + average_path_length(tree.n_node_samples[order]), 0.0))
        roots.append(start)
        start += n
    arrays: dict[str, np.ndarray] = {
        "child": np.concatenate(childs).astype(np.int32),
        "feature": np.concatenate(feats).astype(np.int32),
        "threshold": np.concatenate(thrs).astype(np.float32),
        "value": np.concatenate(vals).astype(np.float64),
        "roots": np.array(roots, dtype=np.int32),
    }
    return arrays, int(forest.max_samples_)
