"""The tabular detector's input: parameter checks, ``X`` -> columns, columns -> encoded rows.

``X`` is a 2-D numeric numpy array, a mapping ``{name: 1-D array}`` (the columns), or a DataFrame
whose library registered a reader with :func:`register_frame_reader` (the pandas and polars
adapters in :mod:`ad_pipeline.frames.tabular` do, when ``df.anomaly`` gets registered; this file
never imports pandas or polars). Numeric columns are centred on their median and divided by their
inter-quartile range; string (object) columns are encoded by the share of their category in the
training rows; missing values (NaN, None, +-inf, NaT) become NaN (numeric) or a category of their
own (strings).

>>> import numpy as np
>>> names, cols = as_columns({"a": [1.0, None], "b": np.array(["x", None], dtype=object)})
>>> names, numeric_column(np.array([1, None], dtype=object), "a").tolist(), categories(cols[1])[0].tolist()
(['a', 'b'], [1.0, nan], [False, True])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import BadArgument, InvalidModelArgument

__all__ = [
    "PARAMS",
    "check_params",
    "is_int",
    "register_frame_reader",
    "as_columns",
    "numeric_column",
    "is_categorical",
    "categories",
    "robust_center_scale",
    "Encoded",
]

# --------------------------------------------------------------------------------------------
# Parameters: declared once, checked in one place
# --------------------------------------------------------------------------------------------


def is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


PARAMS: dict[str, tuple[Any, str]] = {
    # name: (check, what is expected)
    "n_estimators": (lambda v: is_int(v) and 1 <= v <= 100_000, "an integer between 1 and 100000"),
    "max_samples": (
        lambda v: v == "auto" or (is_int(v) and v >= 2) or (is_real(v) and not is_int(v) and 0 < v <= 1),
        "'auto', an integer of at least 2 or a share in (0, 1]",
    ),
    "max_features": (
        lambda v: (is_int(v) and v >= 1) or (is_real(v) and not is_int(v) and 0 < v <= 1),
        "a positive integer or a share in (0, 1]",
    ),
    "contamination": (
        lambda v: v == "auto" or (is_real(v) and 0 < v <= 0.5),
        "'auto' or a share in (0, 0.5]",
    ),
    "random_state": (lambda v: v is None or (is_int(v) and 0 <= v < 2**32), "None or an integer in [0, 2**32)"),
    "categorical": (
        lambda v: v is None or (not isinstance(v, str) and isinstance(v, Sequence)),
        "None or a list of column names",
    ),
}


def check_params(params: Mapping[str, Any]) -> None:
    for name, value in params.items():
        check, expected = PARAMS[name]
        try:
            ok = bool(check(value))
        except (TypeError, ValueError):  # e.g. an array compared with "auto"
            ok = False
        if not ok:
            raise InvalidModelArgument(f"The {name!r} field must be {expected}, got {value!r}.")


# --------------------------------------------------------------------------------------------
# Input: numpy array, mapping of columns or DataFrame -> ordered columns
# --------------------------------------------------------------------------------------------

#: top-level module of a DataFrame type (``"pandas"``, ``"polars"``) -> its reader:
#: ``reader(frame) -> {name: 1-D array}`` (numeric as float64 with NaN, others as object with None)
FRAME_READERS: dict[str, Callable[[Any], dict[str, np.ndarray]]] = {}


def register_frame_reader(library: str, reader: Callable[[Any], dict[str, np.ndarray]]) -> None:
    """Let :func:`as_columns` read the DataFrames of ``library`` (its top-level module name)."""
    FRAME_READERS[library] = reader


def as_columns(X: Any) -> tuple[list[str] | None, list[np.ndarray]]:
    """Return (names or None for a bare 2-D array, list of 1-D column arrays)."""
    if isinstance(X, Mapping):
        names = [str(k) for k in X]
        cols = [np.asarray(v) for v in X.values()]
    elif isinstance(X, np.ndarray) or isinstance(X, list | tuple):
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise BadArgument(f"The 'X' field must be a 2-D array (rows x features), got {arr.ndim} dimension(s).")
        return None, [arr[:, j] for j in range(arr.shape[1])]
    elif hasattr(X, "columns") and type(X).__module__.split(".")[0] in FRAME_READERS:  # a DataFrame
        cols_map = FRAME_READERS[type(X).__module__.split(".")[0]](X)  # its adapter reads it
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


def numeric_column(col: np.ndarray, name: str) -> np.ndarray:
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


def is_categorical(col: np.ndarray) -> bool:
    if col.dtype.kind in "biufmM":
        return False
    obj = col.astype(object)
    miss = _missing_ufunc(obj).astype(bool) if len(obj) else np.zeros(0, bool)
    return not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in obj[~miss])


def categories(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(missing mask, str keys of the non-missing values)."""
    obj = col.astype(object)
    miss = _missing_ufunc(obj).astype(bool) if len(obj) else np.zeros(0, bool)
    return miss, obj[~miss].astype(str)



class Encoded:
    """Already-encoded rows (used by fit to score the training rows without re-encoding)."""

    def __init__(self, Z: np.ndarray) -> None:
        self.Z = Z


def robust_center_scale(x: np.ndarray) -> tuple[float, float]:
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

