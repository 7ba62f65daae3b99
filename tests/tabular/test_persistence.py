"""save/load: identical scores, and every foreign, tampered or incompatible file refused."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ad_pipeline.engine.tabular import FORMAT_VERSION, TabularDetector
from ad_pipeline.engine.tabular.persistence import digest as _digest
from ad_pipeline.errors import BadArgument, InvalidModelFile


@pytest.fixture(scope="module")
def model(mixed: dict[str, np.ndarray]) -> TabularDetector:
    return TabularDetector(contamination=0.05, n_estimators=50).fit(mixed)


@pytest.fixture
def saved(model: TabularDetector, tmp_path: Path) -> Path:
    path = tmp_path / "model.adm"  # any extension: save never appends one
    model.save(path)
    return path


def _members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _write(path: Path, members: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_roundtrip_identical(model: TabularDetector, saved: Path, mixed: dict[str, np.ndarray]) -> None:
    loaded = TabularDetector.load(saved)
    np.testing.assert_array_equal(loaded.score_samples(mixed), model.score_samples(mixed))
    np.testing.assert_array_equal(loaded.decision_function(mixed), model.decision_function(mixed))
    np.testing.assert_array_equal(loaded.explain(mixed).contributions, model.explain(mixed).contributions)
    assert loaded.get_params() == {**model.get_params()}
    assert loaded.feature_names_in_.tolist() == ["a", "b", "color"]
    assert loaded.percent_anomalies_ == model.percent_anomalies_
    assert set(loaded.versions_) == {"ad_pipeline", "numpy", "scikit-learn"}
    # the file holds no pickled objects at all
    with zipfile.ZipFile(saved) as z:
        assert sorted(z.namelist()) == sorted(
            f"{k}.npy" for k in ("meta", "child", "feature", "threshold", "value", "roots", "center", "scale")
        )


def test_loaded_model_refuses_missing_features(saved: Path, mixed: dict[str, np.ndarray]) -> None:
    with pytest.raises(BadArgument, match="lacks the feature"):
        TabularDetector.load(saved).predict({"a": mixed["a"], "color": mixed["color"]})


def test_tampered_array_refused(saved: Path) -> None:
    members = _members(saved)
    members["threshold"] = members["threshold"].copy()
    members["threshold"][0] += 1.0
    _write(saved, members)
    with pytest.raises(InvalidModelFile, match="checksum does not match"):
        TabularDetector.load(saved)


def _rewrite(path: Path, change_meta=None, change_arrays=None, *, reseal: bool) -> None:  # type: ignore[no-untyped-def]
    """Rewrite a saved model with changed metadata/arrays; ``reseal`` recomputes a valid checksum."""
    members = _members(path)
    meta = json.loads(members.pop("meta").tobytes())
    stored = meta.pop("sha256")
    arrays = {k: v.copy() for k, v in members.items()}
    if change_meta:
        change_meta(meta)
    if change_arrays:
        change_arrays(arrays)
    meta["sha256"] = _digest(meta, arrays) if reseal else stored
    _write(path, {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays})


def test_tampered_metadata_refused(saved: Path) -> None:
    _rewrite(saved, change_meta=lambda m: m.update(offset=0.3), reseal=False)
    with pytest.raises(InvalidModelFile, match="checksum"):
        TabularDetector.load(saved)


def test_flipped_byte_refused(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(InvalidModelFile):
        TabularDetector.load(saved)


def test_truncated_file_refused(saved: Path) -> None:
    saved.write_bytes(saved.read_bytes()[:200])
    with pytest.raises(InvalidModelFile, match="not an ad_pipeline tabular model"):
        TabularDetector.load(saved)


def test_incompatible_version_refused(saved: Path) -> None:
    # a well-formed file of a future format
    _rewrite(saved, change_meta=lambda m: m.update(format_version=FORMAT_VERSION + 1), reseal=True)
    with pytest.raises(InvalidModelFile, match="incompatible version"):
        TabularDetector.load(saved)


def test_out_of_range_tree_refused_even_with_valid_checksum(saved: Path) -> None:
    """A crafted file with a correct checksum still cannot make the kernel read out of bounds."""
    _rewrite(saved, change_arrays=lambda a: a["child"].__setitem__(0, 10**8), reseal=True)
    with pytest.raises(InvalidModelFile, match="out of range"):
        TabularDetector.load(saved)


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_pickle_file_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(InvalidModelFile, match="not an ad_pipeline tabular model"):
        TabularDetector.load(evil)
    assert not marker.exists()


def test_npz_with_pickled_object_refused_and_runs_nothing(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    members = _members(saved)
    buf = io.BytesIO()
    np.savez(buf, **{**members, "value": np.array([_Payload(marker)], dtype=object)})
    saved.write_bytes(buf.getvalue())
    with pytest.raises(InvalidModelFile):
        TabularDetector.load(saved)
    assert not marker.exists()


@pytest.mark.parametrize(
    "members",
    [
        {"x": np.zeros(3)},  # an npz of someone else
        {"meta": np.frombuffer(b'{"format": "other"}', dtype=np.uint8)},
        {"meta": np.frombuffer(b"\xff\xfe not json", dtype=np.uint8)},
    ],
)
def test_foreign_npz_refused(tmp_path: Path, members: dict[str, np.ndarray]) -> None:
    path = tmp_path / "foreign.npz"
    _write(path, members)
    with pytest.raises(InvalidModelFile):
        TabularDetector.load(path)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        TabularDetector.load(tmp_path / "nope.npz")


def test_unfitted_save_refused(tmp_path: Path) -> None:
    with pytest.raises(BadArgument, match="not fitted"):
        TabularDetector().save(tmp_path / "m.npz")


def test_loading_and_scoring_need_neither_sklearn_nor_frames(saved: Path) -> None:
    """A kept model scores in a process that never imports scikit-learn, pandas, polars or pyarrow."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from ad_pipeline.engine.tabular import TabularDetector\n"
        f"m = TabularDetector.load({str(saved)!r})\n"
        "X = {'a': np.array([10.0, 30.0]), 'b': np.array([0.0, 50.0]), 'color': np.array(['red', 'x'], dtype=object)}\n"
        "assert m.predict(X).tolist() == [False, True], m.decision_function(X)\n"
        "m.explain(X)\n"
        "bad = [k for k in ('sklearn', 'pandas', 'polars', 'pyarrow', 'duckdb') if k in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
