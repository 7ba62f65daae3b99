"""Register the pandas accessor and polars namespaces without importing pandas or polars.

:func:`install` (called by ``import ad_pipeline``) registers an adapter at once when its
library is already imported; otherwise it leaves a small :data:`sys.meta_path` finder that
waits for the library's first import and registers the adapter right after the library's
module has run. ``import ad_pipeline`` thus never imports pandas or polars itself.

>>> import sys, ad_pipeline
>>> import pandas as pd
>>> hasattr(pd.DataFrame, "anomaly")
True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

ADAPTERS: dict[str, str] = {
    "pandas": "ad_pipeline.frames.pandas",
    "polars": "ad_pipeline.frames.polars",
    "dask.dataframe": "ad_pipeline.dask",
}


def _register(library: str) -> None:
    try:
        importlib.import_module(ADAPTERS[library])
    except Exception as exc:  # a broken optional integration must not break the user's import
        warnings.warn(f"ad_pipeline could not register its {library} accessor: {exc}", stacklevel=2)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it marks the spec of a watched library so that, once the library's
    module has executed, its adapter gets registered."""

    def __init__(self) -> None:
        self.pending: set[str] = set()
        self._lock = threading.Lock()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.pending:
            return None
        with self._lock:
            if fullname not in self.pending:
                return None
            self.pending.discard(fullname)
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader: Any = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            try:
                original(module)
            finally:
                try:
                    del loader.exec_module  # back to the class's method
                except AttributeError:  # pragma: no cover
                    pass
            _register(fullname)

        loader.exec_module = exec_module
        return spec


_FINDER = _PostImportFinder()


def install() -> None:
    """Register the adapters of imported libraries now, the others when they get imported."""
    for library in ADAPTERS:
        if library in sys.modules:
            _register(library)
        else:
            _FINDER.pending.add(library)
    if _FINDER.pending and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)

