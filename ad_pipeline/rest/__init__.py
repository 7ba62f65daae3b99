"""The Azure Anomaly Detector compatible REST service (the ``[server]`` extra).

- :mod:`.request`: an Azure request body -> values, timestamps and engine parameters (no FastAPI needed);
- :mod:`.app`: :func:`create_app` (the FastAPI application), subscription keys, size limits;
- :mod:`.models`: the OpenAPI description of the bodies, its parameter fields from the engine's table;
- :mod:`.server`: ``ad-pipeline serve`` / ``python -m ad_pipeline.rest`` (uvicorn).

The names below are imported when first used, so that ``import ad_pipeline.rest`` needs no FastAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "load_keys", "preview_body", "KEY_HEADER", "KEYS_ENV", "build_parser", "serve", "main"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "load_keys", "preview_body", "KEY_HEADER", "KEYS_ENV"):
        from . import app

        return getattr(app, name)
    if name in ("build_parser", "serve", "main"):
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
