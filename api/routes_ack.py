"""Acknowledge links from mail: a confirmation page, and the form's POST that acknowledges.

The link is the credential (:mod:`engine.notify.acklink`): no bearer token, one
escalation, one agency, until it expires. GET never changes anything, because mail
scanners and previews open links; only the POST acknowledges.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import HTMLResponse

from api.deps import NowDep, RuntimeDep, SessionDep
from api.schemas import errors
from engine import AckGrant, acknowledge, read_token
from engine.errors import NotFound

router = APIRouter(tags=["work"])

# Declared like /metrics: with response_class=HTMLResponse FastAPI would document the
# JSON error answers as text/html too.
_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "A page."}
}

Token = Annotated[str, Path(min_length=10, max_length=400, pattern=r"^[A-Za-z0-9_\-.]+$")]


def _grant(rt: RuntimeDep, token: str, now: NowDep) -> AckGrant:
    secret = rt.settings.link_secret
    if secret is None:
        raise NotFound("acknowledge links are not enabled on this server")
    return read_token(secret.get_secret_value(), token, now=now)


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title></head><body><main><h1>{html.escape(title)}"
        f"</h1>{body}</main></body></html>"
    )


@router.get("/ack/{token}", response_class=Response, responses={**_HTML, **errors(404, 422)},
            operation_id="ack_link_page", summary="The confirmation page of a mail's "
            "acknowledge link (changes nothing)")
def get_ack_page(token: Token, rt: RuntimeDep, now: NowDep) -> HTMLResponse:
    grant = _grant(rt, token, now)
    return _page(
        "Acknowledge this reminder",
        f"<p>Acknowledging escalation {grant.escalation_id} stops its further steps.</p>"
        f'<form method="post"><button type="submit">Acknowledge</button></form>',
    )


@router.post("/ack/{token}", response_class=Response,
             responses={**_HTML, **errors(404, 409, 422)},
             operation_id="ack_link", summary="Acknowledge through a mail's link: once, "
             "by the agency it was sent to, before it expires")
def post_ack_link(token: Token, rt: RuntimeDep, session: SessionDep,
                  now: NowDep) -> HTMLResponse:
    grant = _grant(rt, token, now)
    result = acknowledge(session, grant.escalation_id, agency_id=grant.agency_id, now=now)
    session.commit()
    return _page("Acknowledged", f"<p>Case {result.case_id}: acknowledged; the "
                 "steps after this one are stopped.</p>")
