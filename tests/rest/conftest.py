"""Fixtures of the REST service tests: an in-process app (a real uvicorn server: ``live_url``, tests/support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from ad_pipeline.rest import create_app  # noqa: E402

from ..support.rest_server import KEY, OTHER_KEY  # noqa: E402


@pytest.fixture(scope="session")
def app():
    return create_app(keys={KEY, OTHER_KEY})


@pytest.fixture(scope="session")
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c
