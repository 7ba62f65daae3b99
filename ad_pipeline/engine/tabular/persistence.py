"""Saving and loading a fitted :class:`~ad_pipeline.engine.tabular.TabularDetector` (``m`` below; the
detector calls these, so this file does not import it).

A model file is an ``.npz`` of the flat tree arrays and the per-feature scaling, plus JSON
metadata (a ``meta`` member of bytes) sealed by a SHA-256 digest; :func:`load_model` reads it with
``allow_pickle=False``, so loading a file never executes code and does not depend on the
scikit-learn version. The format is :data:`FORMAT_NAME` version :data:`FORMAT_VERSION`.

>>> digest({"a": 1}, {"x": np.zeros(2)}) == digest({"a": 1}, {"x": np.zeros(3)})  # shapes are sealed too
False
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import numpy as np

from ...errors import DISTRIBUTION, InvalidModelFile
from .encoding import check_params

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "save_model", "load_model", "digest", "package_version"]

FORMAT_NAME = "ad_pipeline.tabular.isolation_forest"
FORMAT_VERSION = 1


def save_model(m: Any, path: str | os.PathLike[str]) -> None:
    """Write the fitted model ``m`` to ``path`` (see :meth:`TabularDetector.save`)."""
    m._check_fitted()
    arrays: dict[str, np.ndarray] = {
        "child": m._child,
        "feature": m._feature,
        "threshold": m._threshold,
        "value": m._value,
        "roots": m._roots,
        "center": m._center,
        "scale": m._scale,
    }
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": m.versions_,
        "params": {k: (list(v) if k == "categorical" and v is not None else v) for k, v in m.get_params().items()},
        "feature_names": m.feature_names_in_.tolist(),
        "kinds": m._kinds,
        "vocab": m._vocab,
        "offset": m.offset_,
        "max_samples": m.max_samples_,
        "percent_anomalies": m.percent_anomalies_,
    }
    meta["sha256"] = digest(meta, arrays)
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


def load_model(cls: type[Any], path: str | os.PathLike[str]) -> Any:
    """Read a model written by :func:`save_model` as an instance of ``cls`` (see :meth:`TabularDetector.load`)."""
    path = os.fspath(path)
    with open(path, "rb") as f:  # a missing file stays a FileNotFoundError
        data = f.read()
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as exc:  # noqa: BLE001 - zip/zlib/npy errors of every kind mean "not a model"
        raise InvalidModelFile(f"The file {path!r} is not an ad_pipeline tabular model: {exc}") from None
    return _from_arrays(cls, arrays, path)


def _from_arrays(cls: type[Any], arrays: dict[str, np.ndarray], path: str) -> Any:
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
    if stored != digest(meta, arrays):
        raise bad("its checksum does not match its content (the file was modified or truncated)")
    try:
        m = cls(**meta["params"])
        check_params(m.get_params())
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


def _check_tree_arrays(m: Any, d: int, bad: Any) -> None:
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


def digest(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode("utf-8"))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()



def package_version() -> str:
    """The installed version of ad_pipeline (recorded in saved models)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"
