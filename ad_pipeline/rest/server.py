"""``ad-pipeline serve`` / ``python -m ad_pipeline.rest``: run the REST service with uvicorn."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import MissingDependency
from .app import DEFAULT_MAX_POINTS, KEYS_ENV, create_app, load_keys

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["build_parser", "serve", "main"]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``ad-pipeline serve`` (added to ``parser`` when given)."""
    p = parser or argparse.ArgumentParser(
        prog="ad-pipeline serve", description="Serve the Azure Anomaly Detector compatible REST API."
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument(
        "--keys-file", default=None, help=f"file of accepted subscription keys (besides ${KEYS_ENV}, comma-separated)"
    )
    p.add_argument("--no-auth", action="store_true", help="serve without subscription keys (anyone can call)")
    p.add_argument(
        "--max-points", type=int, default=DEFAULT_MAX_POINTS, help=f"largest series (default {DEFAULT_MAX_POINTS})"
    )
    p.add_argument("--max-body-bytes", type=int, default=None, help="largest request body (default from --max-points)")
    p.add_argument("--workers", type=int, default=1, help="server processes (default 1; e.g. one per core)")
    p.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    return p


_CONFIG_ENV = "AD_PIPELINE_SERVE_CONFIG"


def app_from_env() -> FastAPI:
    """The app of one worker process of ``--workers N`` (uvicorn imports it by name in each process)."""
    cfg = json.loads(os.environ[_CONFIG_ENV])
    return create_app(keys=cfg["keys"], max_points=cfg["max_points"], max_body_bytes=cfg["max_body_bytes"])


def serve(args: argparse.Namespace) -> int:
    """Run the service as ``args`` (from :func:`build_parser`) say; returns the exit status."""
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover
        raise MissingDependency.for_extra("uvicorn", "server") from exc
    try:
        keys = load_keys(args.keys_file)
    except OSError as exc:
        print(f"error: cannot read --keys-file {args.keys_file!r}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.no_auth:
        if keys:
            print("error: --no-auth given while keys are configured; choose one.", file=sys.stderr)
            return 2
        app_keys: set[str] | None = None
    elif not keys:
        print(
            f"error: no subscription keys configured. Set {KEYS_ENV}=key1,key2 or pass --keys-file FILE; "
            "to serve without authentication, pass --no-auth explicitly.",
            file=sys.stderr,
        )
        return 2
    else:
        app_keys = keys
    if args.max_points < 1:
        print(f"error: --max-points must be at least 1, got {args.max_points}.", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"error: --workers must be at least 1, got {args.workers}.", file=sys.stderr)
        return 2
    app = create_app(keys=app_keys, max_points=args.max_points, max_body_bytes=args.max_body_bytes)
    log_level = "warning" if getattr(args, "quiet", False) else args.log_level  # -q of the ad-pipeline command
    if args.workers == 1:
        uvicorn.run(app, host=args.host, port=args.port, log_level=log_level)
        return 0
    # several processes: each worker builds the same app from the checked configuration
    os.environ[_CONFIG_ENV] = json.dumps(
        {"keys": sorted(app_keys) if app_keys is not None else None, "max_points": args.max_points,
         "max_body_bytes": args.max_body_bytes}
    )  # fmt: skip
    uvicorn.run(
        "ad_pipeline.rest.server:app_from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
        log_level=log_level,
    )  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ad_pipeline.rest`` (the same as ``ad-pipeline serve``)."""
    return serve(build_parser().parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
