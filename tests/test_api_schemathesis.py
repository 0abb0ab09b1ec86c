"""Property-based tests of the live API against its own OpenAPI schema (schemathesis).

Every operation gets generated requests, valid and invalid, sent once with the admin token
and once with an agency's token, to the real server on loopback with the example
deployed and a case open. No answer may be a server error, and every answer must match
what the schema documents (status, media type, headers and body). ``positive_data_acceptance``
is left out: a request can fit the schema and still be refused for what it means (an
unknown case id, a trigger not allowed now), which the schema documents as 404/409/422.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from api_server import ADMIN_TOKEN, World, live_server, world_on
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

MAX_EXAMPLES = 25


@pytest.fixture
def live_world(db_url: str) -> Iterator[World]:
    with live_server(db_url) as server, world_on(server) as world:
        world.open_case()
        yield world


@pytest.fixture
def api_schema(live_world: World) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_world.server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_honours_its_schema(case: schemathesis.Case, live_world: World) -> None:
    for token in (ADMIN_TOKEN, live_world.tokens["council"]):
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"},
            excluded_checks=[positive_data_acceptance],
        )
