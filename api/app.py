"""The application factory: settings in, a FastAPI app out.

Each handler is thin (parse, open a session, call one engine function, commit). The factory
owns what is shared: the database engine, the clock, the error shape and the body limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import Engine

from api import errors
from api.deps import Runtime
from api.limits import BodySizeLimit
from engine import ProcessMetrics, check_migrated, make_engine, session_factory, tracing
from engine.clock import utcnow
from engine.settings import Settings

DESCRIPTION = """\
Cases, workflows and work queues of the referral engine.

Authenticate with `Authorization: Bearer TOKEN`: an agency's token acts as that agency
and sees only what its roles on each case allow; the admin token manages workflows and
agencies. Every error has the shape `{"error": {"code", "message", "details"}}`.
"""


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    engine: Engine | None = None,
    process_metrics: ProcessMetrics | None = None,
) -> FastAPI:
    """Build the API over ``settings.database_url`` (or ``engine``, which the caller owns)."""
    from api import (
        routes_ack,
        routes_agencies,
        routes_cases,
        routes_notifications,
        routes_system,
        routes_work,
        routes_workflows,
        timing,
        webhooks,
    )
    from api.routes_subjects import router as subjects_router

    db = engine if engine is not None else make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Refuse to serve an unmigrated database rather than fail on the first request.
        check_migrated(db)
        yield
        if engine is None:
            db.dispose()

    app = FastAPI(
        title="referral-engine",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Operation ids a generated client can call: the handler's name (post_case), not
        # FastAPI's default path-and-method mangle.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.runtime = Runtime(
        settings=settings, engine=db, sessions=session_factory(db), clock=clock
    )
    app.state.process_metrics = process_metrics or ProcessMetrics()
    timing.install(app, app.state.process_metrics)
    errors.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    for module in (routes_workflows, routes_agencies, routes_cases, routes_work, routes_system,
                   routes_ack, routes_notifications):
        app.include_router(module.router)
    app.include_router(subjects_router)
    # Off (and nothing added to the app) unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
    tracing.setup("referral-api")
    tracing.instrument_fastapi(app)
    webhooks.register(app)
    return app
