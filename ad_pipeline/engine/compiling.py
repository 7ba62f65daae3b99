"""One line before numba compiles the engine's kernels, so a first run is not silent.

numba compiles a kernel on its first call and caches the machine code (``cache=True``); a later
process loads it in milliseconds. The first call after an install (or after the cache was
cleared) compiles every kernel it needs, about 40 s to 2 min on two cores. numba's event API
reports each compilation that the cache could not spare; the first one of the process logs::

    ad_pipeline: compiling the detection kernels for this machine (first use only, ...)

on the ``ad_pipeline`` logger at WARNING (stderr when logging is not configured; the task log
in Airflow). Nothing is logged when the kernels come from the cache.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("ad_pipeline")

MESSAGE = (
    "ad_pipeline: compiling the detection kernels for this machine (first use only, about 1 minute; "
    "cached for later runs) ..."
)
_state = {"watching": False, "told": False}


def _on_start(event: Any) -> None:
    """Log :data:`MESSAGE` when the first of our kernels starts compiling (once per process)."""
    if _state["told"]:
        return
    dispatcher = (event.data or {}).get("dispatcher")
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    if module.startswith("ad_pipeline."):
        _state["told"] = True
        log.warning(MESSAGE)


def watch_compilation() -> None:
    """Register the notice with numba once per process (cheap; call before running a model)."""
    if _state["watching"]:
        return
    from numba.core import event

    class Notice(event.Listener):
        def on_start(self, ev: Any) -> None:
            _on_start(ev)

        def on_end(self, ev: Any) -> None:
            pass

    _state["watching"] = True
    event.register("numba:compile", Notice())
