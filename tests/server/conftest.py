"""Fixtures of the REST service tests: an in-process app and a real uvicorn server in a subprocess."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from ad_pipeline.server import KEYS_ENV, create_app  # noqa: E402

from ..support.rest_server import KEY, OTHER_KEY, start_server, stop_server  # noqa: E402


@pytest.fixture(scope="session")
def app():
    return create_app(keys={KEY, OTHER_KEY})


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def live_url() -> Iterator[str]:
    """A real uvicorn server on a free loopback port, keys from the environment variable."""
    proc, url = start_server(env={KEYS_ENV: f"{KEY},{OTHER_KEY}"})
    try:
        yield url
    finally:
        stop_server(proc)
