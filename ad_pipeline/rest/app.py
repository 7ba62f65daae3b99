"""A drop-in replacement for the Azure Anomaly Detector REST service (univariate).

Serves ``POST /anomalydetector/{v1.0,v1.1}/timeseries/{entire,last,changepoint}/detect`` with
Azure's request and response bodies (and the 2019 preview's ``/anomalyfinder/v2.0/timeseries/
{entire,last}/detect``, answering in its PascalCase), on the same engine as the Python API: code written for
Azure keeps working once its endpoint and key point here. Needs the ``[server]`` extra
(FastAPI + uvicorn); start it with ``ad-pipeline serve``.

- The request is read by :func:`ad_pipeline.rest.request.parse_request` (shared with
  every replay of recorded requests) and the response is the result's ``to_dict()``.
- Refusals are Azure's: HTTP 400 ``{"code", "message"}`` (the library's error), 401 for a
  missing or unknown ``Ocp-Apim-Subscription-Key``, 405 for other methods, 413 for bodies over
  ``max_body_bytes``, and the service's 8,640-point limit (``max_points``).
- ``GET /healthz`` and ``GET /openapi.json`` need no key.

>>> from fastapi.testclient import TestClient
>>> client = TestClient(create_app(keys={"secret"}))
>>> body = {"series": [{"value": v} for v in [1.0, 2, 3, 2] * 6], "sensitivity": 95}
>>> r = client.post("/anomalydetector/v1.1/timeseries/last/detect", json=body,
...                 headers={"Ocp-Apim-Subscription-Key": "secret"})
>>> r.status_code, sorted(r.json())[:3]
(200, ['expectedValue', 'isAnomaly', 'isNegativeAnomaly'])
>>> client.post("/anomalydetector/v1.1/timeseries/last/detect", json=body).status_code
401
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from ..errors import AnomalyDetectorError, BadArgument, InvalidSeries, MissingDependency

try:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.utils import get_openapi
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependency.for_extra("fastapi", "server") from exc

from .models import REQUEST_MODELS, RESPONSE_MODELS, ChangePointRequest, DetectRequest, ErrorResponse, Health
from .request import parse_request

__all__ = [
    "API_VERSIONS",
    "DEFAULT_MAX_POINTS",
    "GRID_FACTOR",
    "KEY_HEADER",
    "KEYS_ENV",
    "PREVIEW_PATH",
    "create_app",
    "load_keys",
    "preview_body",
]

log = logging.getLogger("ad_pipeline.rest")

KEY_HEADER = "Ocp-Apim-Subscription-Key"
KEYS_ENV = "AD_PIPELINE_API_KEYS"
DEFAULT_MAX_POINTS = 8640
#: a series may span at most this many times ``max_points`` grid points (given + missing ones):
#: sparse series are legal (recorded Azure cases have 99.9% missing), but the grid bounds the work
GRID_FACTOR = 16
#: Served and documented; the preview spellings some older SDKs used are served too (undocumented).
API_VERSIONS = ("v1.0", "v1.1")
_EXTRA_API_VERSIONS = ("v1.1-preview", "v1.1-preview.1")
_KINDS = ("entire", "last", "changepoint")
#: The 2019 preview ("Anomaly Finder v2"), which Azure's first quick starts call: entire and last
#: detect only, answering in PascalCase (``IsAnomaly``, ``ExpectedValues``, ...) without ``severity``
PREVIEW_PATH = "/anomalyfinder/v2.0/timeseries/{kind}/detect"
_PREVIEW_KINDS = ("entire", "last")


_SUMMARIES = {
    "entire": "Detect anomalies for the entire series in batch",
    "last": "Detect anomaly status of the latest point in time series",
    "changepoint": "Detect change points for the entire series",
}


# --------------------------------------------------------------------------- keys


def load_keys(keys_file: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None) -> set[str]:
    """The accepted subscription keys: ``$AD_PIPELINE_API_KEYS`` (comma-separated) plus a file.

    The file holds keys separated by newlines or commas; ``#`` starts a comment.

    >>> sorted(load_keys(environ={"AD_PIPELINE_API_KEYS": "k1, k2,"}))
    ['k1', 'k2']
    """
    env = os.environ if environ is None else environ
    texts = [env.get(KEYS_ENV, "")]
    if keys_file is not None:
        texts += [line.split("#", 1)[0] for line in Path(keys_file).read_text().splitlines()]
    return {k.strip() for text in texts for k in text.split(",") if k.strip()}


# --------------------------------------------------------------------------- the app


class _Refusal(Exception):
    """An HTTP refusal that is not a detection error (401, 413)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _parse_int(text: str) -> int | float:
    # integers beyond float range become +-inf (refused by the engine's value check), not a crash
    return int(text) if len(text) < 300 else float(text)


def _decode(raw: bytes) -> Any:
    if not raw.strip():
        raise BadArgument("Invalid json format, input data is Empty.")
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadArgument(f"Invalid json format: {str(exc)[:200]}") from None


def _parse(body: Any, kind: str) -> tuple[Any, Any, dict[str, Any]]:
    """The shared request reader (``parse_request``), for detect or change-point bodies."""
    return parse_request(body, "changepoint" if kind == "changepoint" else "detect")


def _grid_points(values: Any, timestamps: Any, kwargs: dict[str, Any], kind: str) -> int | None:
    """How many grid points the engine will model (given + missing ones), or None if it will refuse anyway."""
    import numpy as np

    from ad_pipeline.engine.granularity import as_datetime64, grid_positions, infer_granularity
    from ad_pipeline.engine.params import SeriesParams, check_custom_interval, check_granularity
    from ad_pipeline.engine.prepare import points_only

    try:
        granularity = check_granularity(kwargs.get("granularity"))
        interval = check_custom_interval(kwargs.get("custom_interval"), granularity)
        ts = as_datetime64(timestamps)
        if granularity is None:
            granularity, interval = infer_granularity(ts)
        if granularity == "none" or len(ts) == 0:
            return len(ts)
        m = int(grid_positions(ts, granularity, interval)[-1]) + 1
        params = SeriesParams(method=kwargs.get("method") or "azure", period=kwargs.get("period"))
        if kind != "changepoint" and points_only(params, m, m - int(np.count_nonzero(~np.isnan(values)))):
            return len(ts)  # the model sees the points alone, not their grid
        return m
    except (AnomalyDetectorError, TypeError):  # the engine reports it, in its own order of checks
        return None


def _check_limits(values: Any, timestamps: Any, kwargs: dict[str, Any], max_points: int, kind: str) -> None:
    """The service's size limits (the library has none): points given, and the grid they span."""
    if len(values) > max_points:
        raise InvalidSeries(
            f"The 'series' field cannot have more than {max_points} points, got {len(values)} "
            "(the limit of this server, set with --max-points)."
        )
    if timestamps is not None:
        grid = _grid_points(values, timestamps, kwargs, kind)
        if grid is not None and grid > GRID_FACTOR * max_points:
            raise InvalidSeries(
                f"The 'series' field spans {grid} points of its granularity ({grid - len(values)} of them missing), "
                f"more than this server models ({GRID_FACTOR} x {max_points}); check 'granularity' and "
                "'customInterval' against the timestamps."
            )


def preview_body(body: dict[str, Any]) -> dict[str, Any]:
    """A v1 response body (camelCase, ``to_dict()``) as the 2019 preview answered it: PascalCase, no severity.

    >>> preview_body({"period": 7, "isAnomaly": [False], "severity": [0.0]})
    {'Period': 7, 'IsAnomaly': [False]}
    """
    return {key[0].upper() + key[1:]: value for key, value in body.items() if key != "severity"}


def _detect(kind: str, raw: bytes, max_points: int, preview: bool = False) -> dict[str, Any]:
    """Body bytes -> response body: the whole CPU-bound part of a request (run in a worker thread)."""
    import ad_pipeline as ad

    values, timestamps, kwargs = _parse(_decode(raw), kind)
    _check_limits(values, timestamps, kwargs, max_points, kind)
    if kind == "entire":
        body = ad.detect_entire(values, timestamps, **kwargs).to_dict()
    elif kind == "last":
        body = ad.detect_last(values, timestamps, **kwargs).to_dict()
    else:
        body = ad.detect_change_points(values, timestamps, **kwargs).to_dict()
    return preview_body(body) if preview else body


def create_app(
    *,
    keys: Collection[str] | None,
    max_points: int = DEFAULT_MAX_POINTS,
    max_body_bytes: int | None = None,
) -> FastAPI:
    """Build the ASGI application of the Azure-compatible service.

    Parameters
    ----------
    keys : collection of str or None
        Accepted ``Ocp-Apim-Subscription-Key`` values. ``None`` turns authentication off (it must
        be asked for explicitly: an empty collection is refused).
    max_points : int
        Largest series accepted (Azure's limit, 8,640, by default).
    max_body_bytes : int, optional
        Largest request body; default ``max(1 MiB, 256 bytes per allowed point)``.

    Returns
    -------
    fastapi.FastAPI

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app(keys=None))
    >>> client.get("/healthz").json()["status"]
    'ok'
    >>> r = client.post("/anomalydetector/v1.1/timeseries/entire/detect", json={"granularity": "daily"})
    >>> r.status_code, r.json()
    (400, {'code': 'BadArgument', 'message': "The 'series' field is required in request."})
    """
    import ad_pipeline

    if keys is not None:
        keys = [str(k) for k in keys]
        if not keys:
            raise ValueError(
                "No subscription keys configured: pass keys, or keys=None to serve without authentication."
            )
    if not (isinstance(max_points, int) and max_points >= 1):
        raise ValueError(f"max_points must be a positive integer, got {max_points!r}.")
    body_limit = max_body_bytes if max_body_bytes is not None else max(1 << 20, 256 * max_points)
    key_bytes = [k.encode() for k in keys] if keys is not None else None

    app = FastAPI(
        title="ad_pipeline Anomaly Detector",
        version=ad_pipeline.__version__,
        description=(
            "Azure Anomaly Detector (univariate) compatible service on the ad_pipeline engine. "
            f"Series of at most {max_points} points; bodies of at most {body_limit} bytes."
        ),
    )
    app.state.max_points = max_points
    app.state.max_body_bytes = body_limit

    def authorize(request: Request) -> None:
        if key_bytes is None:
            return
        given = request.headers.get(KEY_HEADER)
        if given is None:
            raise _Refusal(
                401,
                "Unauthorized",
                f"Access denied due to missing subscription key. Make sure to include the {KEY_HEADER} header.",
            )
        g = given.encode()
        if not any(hmac.compare_digest(g, k) for k in key_bytes):
            raise _Refusal(401, "Unauthorized", "Access denied due to invalid subscription key.")

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > body_limit:
            raise _Refusal(
                413, "RequestTooLarge", f"The request body must be at most {body_limit} bytes, got {int(declared)}."
            )
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > body_limit:
                    raise _Refusal(
                        413, "RequestTooLarge", f"The request body must be at most {body_limit} bytes, got more."
                    )
                chunks.append(chunk)
        except ClientDisconnect:  # the caller went away mid-upload: nobody to answer, nothing went wrong here
            # uvicorn's own logger: configured (level, format) in every worker process
            logging.getLogger("uvicorn.error").info(
                "client disconnected during the upload of %s %s (%d bytes read)", request.method, request.url.path, size
            )
            raise _Refusal(400, "ClientDisconnected", "The client disconnected before the body was read.") from None
        return b"".join(chunks)

    def make_endpoint(kind: str, preview: bool = False) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            authorize(request)
            raw = await read_body(request)
            # parsing and detection are CPU-bound: a worker thread keeps the event loop responsive
            body = await run_in_threadpool(_detect, kind, raw, max_points, preview)
            return JSONResponse(body)

        endpoint.__name__ = f"detect_{kind}{'_preview' if preview else ''}"
        return endpoint

    for kind in _PREVIEW_KINDS:  # same engine, same refusals; undocumented in /openapi.json
        app.add_api_route(PREVIEW_PATH.format(kind=kind), make_endpoint(kind, preview=True), methods=["POST"],
                          include_in_schema=False, operation_id=f"{kind}_detect_v2_0_preview")

    security: list[dict[str, list[str]]] | None = [{"SubscriptionKey": []}] if key_bytes is not None else None
    for version in API_VERSIONS + _EXTRA_API_VERSIONS:
        documented = version in API_VERSIONS
        for kind in _KINDS:
            app.add_api_route(
                f"/anomalydetector/{version}/timeseries/{kind}/detect",
                make_endpoint(kind),
                methods=["POST"],
                include_in_schema=documented,
                summary=_SUMMARIES[kind],
                operation_id=f"{kind}_detect_{version.replace('.', '_').replace('-', '_')}",
                tags=[version],
                response_model=None,
                responses={
                    200: {"model": RESPONSE_MODELS[kind], "description": "Detection result."},
                    400: {"model": ErrorResponse, "description": "A validation rule refused the request."},
                    **(
                        {401: {"model": ErrorResponse, "description": "Missing or unknown subscription key."}}
                        if key_bytes is not None
                        else {}
                    ),
                    413: {"model": ErrorResponse, "description": "Request body too large."},
                },
                openapi_extra={
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{REQUEST_MODELS[kind].__name__}"}
                            }
                        },
                    },
                    **({"security": security} if security else {}),
                },
            )

    @app.get("/healthz", response_model=Health, summary="Liveness probe (no key needed)")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": ad_pipeline.__version__}

    @app.exception_handler(AnomalyDetectorError)
    async def _detection_error(request: Request, exc: AnomalyDetectorError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=400)

    @app.exception_handler(_Refusal)
    async def _refusal(request: Request, exc: _Refusal) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(400, "BadArgument", f"Invalid request: {where}: {first.get('msg', 'invalid')}.")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "NotFound", 405: "MethodNotAllowed"}
        message = {404: f"No such resource: {request.url.path}.", 405: f"Method {request.method} not allowed."}
        return _error(
            exc.status_code,
            codes.get(exc.status_code, "HttpError"),
            message.get(exc.status_code, str(exc.detail)),
            dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "InternalServerError", "An unexpected error occurred; see the server log.")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (DetectRequest, ChangePointRequest):
                s = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(s.pop("$defs", {}))
                components[model.__name__] = s
            if key_bytes is not None:
                schema["components"]["securitySchemes"] = {
                    "SubscriptionKey": {"type": "apiKey", "in": "header", "name": KEY_HEADER}
                }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
