"""Start the real API server (uvicorn on a free loopback port) for tests.

The server runs ``uvicorn.Server`` in a thread of the test process against the test's
database, so the test can hand it a clock it controls. Startup waits until ``/healthz``
answers, with a deadline; teardown asks uvicorn to exit and joins the thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from conftest import REPO, free_port
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
from engine.settings import Settings

ADMIN_TOKEN = "test-admin-token-0123456789"
EXAMPLE = (REPO / "tests" / "fixtures" / "cases_example.yaml").read_text(encoding="utf-8")
# Who holds which role on the example's cases: three agencies (and an outsider with none).
ROLES = {
    "council": ["referrer", "coordinator", "chair", "mentor"],
    "police": ["police", "police_supervisor"],
    "health": ["therapist"],
}
STARTUP_SECONDS = 20.0


@dataclass
class Clock:
    """A settable clock for the server: tests move time, nothing sleeps."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@dataclass
class LiveServer:
    url: str
    settings: Settings
    clock: Clock

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)

    def admin(self) -> httpx.Client:
        return self.client(ADMIN_TOKEN)


def _wait_until_healthy(url: str, thread: threading.Thread, deadline: float) -> None:
    while True:
        if not thread.is_alive():
            raise RuntimeError("the API server stopped during startup (see the log above)")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the API server at {url} did not become healthy in time")
        time.sleep(0.02)


@contextmanager
def live_server(
    database_url: str,
    *,
    clock: Clock | None = None,
    configure: Callable[[FastAPI], None] | None = None,
    **overrides: object,
) -> Iterator[LiveServer]:
    """The API on ``database_url`` (migrated), served until the block ends.

    ``configure`` may add test-only routes to the app before it starts.
    """
    settings = Settings(
        database_url=database_url,
        admin_token=SecretStr(ADMIN_TOKEN),
        broker_url=None,
        **overrides,  # type: ignore[arg-type]
    )
    clock = clock or Clock()
    port = free_port()
    app = create_app(settings, clock=clock)
    if configure is not None:
        configure(app)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, thread, time.monotonic() + STARTUP_SECONDS)
        yield LiveServer(url=url, settings=settings, clock=clock)
    finally:
        server.should_exit = True
        thread.join(STARTUP_SECONDS)


@dataclass
class World:
    """A running server with the example deployed and an agency client per name."""

    server: LiveServer
    admin: httpx.Client
    agencies: dict[str, httpx.Client]
    ids: dict[str, int]
    tokens: dict[str, str]
    # A case opened for tests that need one to aim at.
    case_id: int = 0

    def __getattr__(self, name: str) -> httpx.Client:
        try:
            return self.agencies[name]
        except KeyError:
            raise AttributeError(name) from None

    def open_case(self, **data: Any) -> dict[str, Any]:
        assignments = {role: agency for agency, roles in ROLES.items() for role in roles}
        opened = self.agencies["council"].post(
            "/cases",
            json={"workflow": "community_panel", "assignments": assignments, "data": data},
        )
        assert opened.status_code == 201, opened.text
        return dict(opened.json())


@contextmanager
def world_on(server: LiveServer) -> Iterator[World]:
    admin = server.admin()
    deployed = admin.post("/workflows", content=EXAMPLE, headers={"Content-Type": "text/yaml"})
    assert deployed.status_code == 201, deployed.text
    clients: dict[str, httpx.Client] = {}
    ids: dict[str, int] = {}
    tokens: dict[str, str] = {}
    for name in [*ROLES, "outsider"]:
        made = admin.post("/agencies", json={"name": name, "email": f"duty@{name}.example"})
        assert made.status_code == 201, made.text
        ids[name] = made.json()["id"]
        tokens[name] = made.json()["token"]
        clients[name] = server.client(tokens[name])
    try:
        yield World(server, admin, clients, ids, tokens)
    finally:
        for client in [admin, *clients.values()]:
            client.close()


def fire(client: httpx.Client, case_id: int, trigger: str, role: str, **data: Any) -> Any:
    """Fire a trigger that must succeed; the case as the caller sees it afterwards."""
    body: dict[str, Any] = {"trigger": trigger, "role": role}
    if data:
        body["data"] = data
    answer = client.post(f"/cases/{case_id}/events", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()
