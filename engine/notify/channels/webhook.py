"""The webhook channel: Standard Webhooks signed POSTs of a thin JSON payload."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx
from standardwebhooks import Webhook

from engine import tracing
from engine.notify.channels import Message, SendResult
from engine.notify.events import envelope
from engine.version import __version__

USER_AGENT = f"referral-engine/{__version__}"


def encode_body(payload: dict[str, object]) -> str:
    """The exact text that is signed and sent: receivers must verify these raw bytes."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def sign_headers(secret: str, message_id: str, signed_at: datetime, body: str) -> dict[str, str]:
    signature = Webhook(secret).sign(message_id, signed_at, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(signed_at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


class WebhookChannel:
    """POSTs each message to the agency's endpoint.

    ``wall_clock`` stamps ``webhook-timestamp``: receivers reject stale timestamps (five
    minutes in the reference libraries), so the stamp is the moment of sending, which under a
    virtual clock is not the ``now`` that scheduling uses.
    """

    name = "webhook"

    def __init__(
        self,
        *,
        timeout: float,
        wall_clock: Callable[[], datetime],
        client: httpx.Client | None = None,
    ) -> None:
        self.timeout = timeout
        self.wall_clock = wall_clock
        # Redirects are not followed: a signed request must reach exactly the configured URL.
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def send(self, message: Message, *, now: datetime) -> SendResult:
        if not message.webhook_url or not message.webhook_secret:
            return SendResult("failed", error="agency has no webhook endpoint configured")
        body = encode_body(envelope(message.kind, message.payload, now=self.wall_clock()))
        headers = sign_headers(message.webhook_secret, message.message_id, self.wall_clock(), body)
        # The URL stays out of the span: an endpoint may carry a token in its query.
        with tracing.client_span(
            "webhook POST",
            {"http.request.method": "POST", "referral.agency_id": message.agency_id,
             "referral.notification_kind": message.kind},
            origin=message.trace_parent,
        ):
            # The signature covers id, timestamp and body only, so traceparent can be added.
            tracing.inject(headers)
            return self._post(message.webhook_url, body, headers)

    def _post(self, url: str, body: str, headers: dict[str, str]) -> SendResult:
        try:
            response = self.client.post(url, content=body.encode(), headers=headers)
        except httpx.TimeoutException as exc:
            return SendResult("retry", error=f"timeout after {self.timeout}s: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return SendResult("retry", error=f"{type(exc).__name__}: {exc}")
        code = response.status_code
        tracing.set_attribute("http.response.status_code", code)
        if 200 <= code < 300:
            return SendResult("delivered", status_code=code)
        if code == 410:
            return SendResult("gone", status_code=code, error="endpoint answered 410 Gone")
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=self.wall_clock())
        # Other 4xx are retried too: a receiver's misconfiguration is usually temporary, and
        # the attempt limit still ends in a dead letter with an alert.
        return SendResult(
            "retry",
            status_code=code,
            error=f"HTTP {code}: {response.text[:200]}",
            retry_after=retry_after,
        )
