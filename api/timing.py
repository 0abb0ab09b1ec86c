"""HTTP request durations into the process's metrics, labelled by route template."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from engine import ProcessMetrics, clock


def install(app: FastAPI, metrics: ProcessMetrics) -> None:
    @app.middleware("http")
    async def time_request(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = clock.monotonic()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            # Unmatched paths share one label: a scanner's guesses must not grow the series.
            template = getattr(route, "path", None) or "unmatched"
            metrics.observe_request(request.method, template, status,
                                    clock.monotonic() - started)
