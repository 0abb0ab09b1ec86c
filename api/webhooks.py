"""The webhooks the engine sends, in the OpenAPI document's ``webhooks`` section.

One entry per type (:data:`engine.notify.events.WEBHOOK_MODELS`), its body the type's model, so a
receiver can generate its handlers from the same document as its API client. These are
descriptions only: nothing is served at these names.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from engine import WEBHOOK_MODELS, WebhookEvent

SIGNED = (
    "Signed as Standard Webhooks describe: `webhook-id` (the message id, stable across "
    "retries), `webhook-timestamp` and `webhook-signature` (`v1,` HMAC-SHA256 with the "
    "agency's `whsec_` secret over `id.timestamp.body`). Answer 2xx to accept; 410 "
    "disables the endpoint; anything else is retried with backoff."
)


def register(app: FastAPI) -> None:
    """Describe every webhook type under ``app.webhooks``."""
    for name, model in WEBHOOK_MODELS.items():
        _describe(app, name, model)


def _describe(app: FastAPI, name: str, model: type[WebhookEvent]) -> None:
    def receive(body: Any) -> None:
        """Never called: the engine is the sender."""

    # The body's model is only known here (postponed annotations would leave a name).
    receive.__annotations__["body"] = model

    app.webhooks.post(
        name, summary=(model.__doc__ or name).strip(), description=SIGNED,
        operation_id=f"webhook_{name.replace('.', '_')}", status_code=200,
    )(receive)
