"""Delivery channels: how one notification reaches one agency.

A channel performs exactly one attempt and classifies the result; deciding on retries,
backoff and dead-lettering is :mod:`engine.notify.delivery`'s job. Channels never touch the
database, so an attempt's I/O runs outside any transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Outcome = Literal["delivered", "retry", "gone", "failed"]


@dataclass(frozen=True, slots=True)
class Message:
    """What a channel needs to send one notification, copied out of the session."""

    message_id: str
    kind: str
    payload: dict[str, Any]
    agency_id: int
    agency_name: str
    webhook_url: str | None = None
    webhook_secret: str | None = None
    email: str | None = None
    # The W3C traceparent of the work that wrote the notification, when tracing was on
    # (engine.tracing.traceparent); the send's span links to that trace.
    trace_parent: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """One attempt's result.

    ``retry``: worth trying again (429, 5xx, timeouts, refused connections);
    ``gone``: the endpoint asked never to be called again (HTTP 410);
    ``failed``: permanently rejected (e.g. SMTP 5xx), no point in retrying.
    """

    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    # Seconds the receiver asked us to wait (Retry-After), if it said.
    retry_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Seconds the attempt took, measured by delivery around the channel's send.
    duration: float | None = None


class Channel(Protocol):
    name: str

    def send(self, message: Message, *, now: datetime) -> SendResult: ...
