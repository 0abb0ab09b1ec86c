"""Operations: liveness of the database and broker, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import NowDep, RuntimeDep, SessionDep
from api.schemas import HealthOut, errors
from engine import CONTENT_TYPE, render

router = APIRouter(tags=["operations"])

BROKER_TIMEOUT_SECONDS = 1.0


def _broker_status(url: str | None) -> str:
    if url is None:
        return "not_configured"
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return "unchecked"
    import redis

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
        return "ok"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    finally:
        client.close()


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut, "description": "The database or broker is down."}},
    summary="Database and broker reachable",
)
def healthz(rt: RuntimeDep, session: SessionDep) -> JSONResponse:
    try:
        session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:
        database = f"unreachable ({type(exc).__name__})"
    broker = _broker_status(rt.settings.broker_url)
    healthy = database == "ok" and broker in ("ok", "not_configured", "unchecked")
    body = HealthOut(
        status="ok" if healthy else "unavailable",
        database=database,
        broker=broker,
        worker="embedded" if rt.settings.broker_url is None else "celery",
    )
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
              "description": "Prometheus text exposition."},
        **errors(),
    },
    summary="Prometheus metrics, counted from the database",
)
def metrics(request: Request, session: SessionDep, now: NowDep) -> Response:
    process = request.app.state.process_metrics.registry
    return Response(render(session, now=now, process=process), media_type=CONTENT_TYPE)
