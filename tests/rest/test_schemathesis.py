"""Property-based run of schemathesis against /openapi.json: no 500s, no response off the schema.

Bounded (a few dozen examples per operation) so it stays well under a minute.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ad_pipeline.rest import create_app  # noqa: E402

from ..support.rest_server import HEADERS, KEY  # noqa: E402

# small series keep each example cheap; the engine still sees every field the schema allows
APP = create_app(keys={KEY}, max_points=300)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case):
    case.call_and_validate(headers=HEADERS, checks=CHECKS)
