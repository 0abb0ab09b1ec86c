"""Property-based tests of the live API against its own OpenAPI schema (schemathesis).

Each operation of the schema the live server serves gets generated requests, valid and
invalid (schemathesis's positive and negative modes), each sent once with the admin token
and once with an agency's token, to the real server on loopback with the example deployed
and a case open. No answer may be a server error, and every answer must match what the
schema documents (status, media type, headers and body).

``positive_data_acceptance`` is left out: a request can fit the schema and still be refused
for what it means (an unknown case id, a trigger not allowed now), which the schema
documents as 404/409/422.

The test drives schemathesis's strategies with hypothesis directly: its lazy pytest
loader (``schemathesis.pytest.from_fixture``) reads ``node._nodeid``, which pytest 9.2 no
longer has.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from api_server import ADMIN_TOKEN, World, live_server, world_on
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from engine.settings import Settings

# Bounded for the suite; REFERRAL_SCHEMATHESIS_EXAMPLES=100 (or more) for a deeper one-off run.
MAX_EXAMPLES = int(os.environ.get("REFERRAL_SCHEMATHESIS_EXAMPLES", "25"))
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def _operations() -> list[tuple[str, str]]:
    # Collection needs the operations before any server runs; the schema comes from the
    # same factory, and the test checks it is the one the live server serves.
    schema = create_app(Settings(database_url="sqlite://")).openapi()
    return [
        (method.upper(), path)
        for path, item in sorted(schema["paths"].items())
        for method in item
        if method in HTTP_METHODS
    ]


OPERATIONS = _operations()


@pytest.fixture
def live_world(db_url: str) -> Iterator[World]:
    with live_server(db_url) as server, world_on(server) as world:
        world.case_id = world.open_case()["id"]
        yield world


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_honours_the_schema(method: str, path: str, live_world: World) -> None:
    url = f"{live_world.server.url}/openapi.json"
    served = httpx.get(url).json()
    assert served == create_app(Settings(database_url="sqlite://")).openapi()
    operation = schemathesis.openapi.from_url(url)[path][method]
    # Random ids mostly miss; half the examples aim at the open case and deployed version
    # so that the engine's own checks (not only "not found") meet generated input.
    known = {"case_id": live_world.case_id, "name": "community_panel", "version": 1}
    aimed = {name: value for name, value in known.items() if "{" + name + "}" in path}
    strategies = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                  operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)]
    if aimed:
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.POSITIVE,
                                                path_parameters=aimed))
    strategy = st.one_of(strategies)
    tokens = (ADMIN_TOKEN, live_world.tokens["council"])

    @given(case=strategy)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    def check(case: Any) -> None:
        for token in tokens:
            auth = {"Authorization": f"Bearer {token}"}
            # On the case too, so a negative case that dropped the header is judged by what
            # was sent; as an explicit header, so `ignored_auth` knows the token is real and
            # probes the operation without it and with a bad one.
            case.headers = {**(case.headers or {}), **auth}
            case.call_and_validate(headers=auth, excluded_checks=[positive_data_acceptance])

    check()
