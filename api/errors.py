"""One JSON error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Engine errors carry a stable ``code``; this module is the only place that maps a code to
an HTTP status. FastAPI's own validation errors, Starlette's routing errors, values the
database refuses and unexpected exceptions are turned into the same shape, so a client
handles one format and never sees a traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import ReferralError

log = logging.getLogger("api")

# The stable codes a client may branch on, and the status each maps to.
STATUS_BY_CODE: dict[str, int] = {
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "version_conflict": 409,
    "conflict": 409,
    "deploy_conflict": 409,
    "ack_not_allowed": 409,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "invalid_input": 422,
    "invalid_definition": 422,
    "transition_not_allowed": 422,
    "database_not_migrated": 503,
    "config_error": 500,
    "internal": 500,
}

_CODE_BY_HTTP_STATUS: dict[int, str] = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}


class UnsupportedMediaType(ReferralError):
    """A body in a media type the endpoint does not take (an edge concern only)."""

    code = "unsupported_media_type"


def status_for(code: str) -> int:
    """HTTP status of an engine error code; unknown codes are the server's fault."""
    return STATUS_BY_CODE.get(code, 500)


def error_payload(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    """The error body as bytes, for callers below FastAPI (the ASGI body-size guard)."""
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return json.dumps(body).encode()


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


async def _referral_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReferralError)
    status = status_for(exc.code)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.error("engine error %s on %s %s: %s", exc.code, request.method, request.url.path,
                  exc.message)
    return error_response(status, exc.code, exc.message, exc.details, headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _not_json(request: Request, exc: RequestValidationError) -> str | None:
    """The media type ("" if none) of a body refused only for not being sent as JSON.

    FastAPI parses a body as JSON only when its Content-Type says so; any other body
    reaches validation as raw bytes and would be reported as "not an object", which
    hides the real mistake (``curl -d`` sends a form type unless told otherwise).
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return None
    body_errors = [err for err in exc.errors() if tuple(err.get("loc", ())) == ("body",)]
    if not body_errors or any(err.get("type") == "missing" for err in body_errors):
        return None
    return media


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    media = _not_json(request, exc)
    if media is not None:
        return error_response(
            415, "unsupported_media_type",
            "send the body as JSON (Content-Type: application/json); "
            + (f"this request sent {media}" if media else "this request sent no Content-Type"),
            {"accepted": ["application/json"]},
        )
    problems = [
        {"location": _location(err.get("loc", ())), "message": str(err.get("msg", "")),
         "type": str(err.get("type", ""))}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{p['location']}: {p['message']}" for p in problems[:5])
    return error_response(422, "invalid_input", f"invalid request: {summary}",
                          {"problems": problems})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_BY_HTTP_STATUS.get(exc.status_code, "internal" if exc.status_code >= 500
                                    else "invalid_input")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    # FastAPI answers 400 for a body it cannot decode; invalid input is 422 everywhere here.
    status = 422 if exc.status_code == 400 else exc.status_code
    return error_response(status, code, message, {}, headers)


def _allowed_methods(request: Request) -> str:
    """Every method the path takes: Starlette names only the first route matching it."""
    path = request.scope.get("path", "")
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and route.methods and regex.match(path):
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the models let through (a NUL byte in text on
    # PostgreSQL, an integer beyond the column's range): the input's fault, not ours.
    return error_response(422, "invalid_input", "the database refused a value in the request",
                          {"reason": type(getattr(exc, "orig", exc)).__name__})


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # The engine checks uniqueness before it writes; a constraint failing at the write
    # means a concurrent request took the value in between (PostgreSQL does not serialise
    # the two as SQLite's single writer does). Retrying gets the ordinary answer.
    log.warning("integrity conflict on %s %s: %s", request.method, request.url.path,
                type(getattr(exc, "orig", exc)).__name__)
    return error_response(409, "conflict",
                          "a concurrent request wrote a conflicting value first; retry",
                          {"reason": type(getattr(exc, "orig", exc)).__name__})


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal server error; the event was logged")


def install(app: FastAPI) -> None:
    """Register every handler that turns a failure into the one error shape."""
    app.add_exception_handler(ReferralError, _referral_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(Exception, _internal_error)
