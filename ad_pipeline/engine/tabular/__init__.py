"""Tabular anomalies (the Nexosis "anomalies" job): an isolation forest over rows.

- :mod:`.detector`: :class:`TabularDetector` (``fit``, ``score_samples``, ``decision_function``,
  ``predict``, ``explain``, ``save``/``load``) and :class:`TabularExplanation`;
- :mod:`.encoding`: parameter checks, ``X`` -> columns -> encoded float32 rows;
- :mod:`.forest`: the trees as flat arrays and the numba kernels that score them;
- :mod:`.persistence`: the model file (``.npz`` + JSON metadata, no pickle).

Imported lazily (``ad_pipeline.TabularDetector``): ``import ad_pipeline`` loads no numba kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .detector import TabularDetector, TabularExplanation
    from .persistence import FORMAT_NAME, FORMAT_VERSION

__all__ = ["TabularDetector", "TabularExplanation", "FORMAT_NAME", "FORMAT_VERSION"]


def __getattr__(name: str) -> Any:  # lazy: the adapters import .encoding without the numba kernels
    if name in ("TabularDetector", "TabularExplanation"):
        from . import detector

        return getattr(detector, name)
    if name in ("FORMAT_NAME", "FORMAT_VERSION"):
        from . import persistence

        return getattr(persistence, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
