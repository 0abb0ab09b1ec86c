"""What a webhook says: Standard Webhooks' ``{"type", "timestamp", "data"}`` envelope,
namespaced types, and one schema per type.

An outbox row keeps the engine's short ``kind`` (``reminder``, ``opened``...) and a flat
payload; :func:`envelope` turns it into the body at send time, so the stored rows and
every other channel stay as they are. The models below are the published contract
(the OpenAPI document's ``webhooks`` section): they forbid extra keys, and a test checks
every body the engine sends against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Bumped when a type's data changes incompatibly; receivers can branch on it.
SCHEMA_VERSION = 1

TYPES = {
    "opened": "case.opened",
    "transitioned": "case.transitioned",
    "closed": "case.closed",
    "reminder": "case.reminder",
    "escalation": "case.escalated",
    "dead_letter": "notification.dead_lettered",
    "test": "notification.test",
}


def event_type(kind: str) -> str:
    """The namespaced webhook type of an outbox row's ``kind``."""
    return TYPES.get(kind, f"case.{kind}")


def envelope(kind: str, payload: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """The webhook body of one outbox row: its ``at`` (when it happened) as the
    timestamp, the rest as ``data`` with the schema version."""
    data = {k: v for k, v in payload.items() if k not in ("type", "at")}
    return {
        "type": event_type(kind),
        "timestamp": payload.get("at") or now.isoformat(),
        "data": {"schema_version": SCHEMA_VERSION, **data},
    }


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(description="version of this type's data schema")
    message_id: str = Field(description="stable across retries: the webhook-id header")


class _CaseData(_Data):
    case_id: int
    workflow: str
    version: int = Field(description="the workflow version the case runs on")
    state: list[str] = Field(description="the case's active states after the event")
    roles: list[str] = Field(description="the roles the recipient is told as")
    fields: dict[str, Any] = Field(
        description="case fields the recipient may read (visible_to); on email only "
        "when the workflow opts in")


class NoticeData(_CaseData):
    subject: str = Field(description="a short subject line, no field values")
    text: str = Field(description="one sentence saying what happened")
    trigger: str | None = Field(description="the trigger that caused it; null on opening")


class ClosedData(NoticeData):
    outcome: Any = Field(description="the outcome field's value, when the recipient may "
                         "read it, else null")


class TimerData(_CaseData):
    timer: str
    step: int = Field(description="0: the reminder (or its n-th repeat for 'every'), "
                      "k: ladder step k")
    escalation_id: int | None = Field(description="acknowledge with POST "
                                      "/escalations/{id}/ack")
    timer_state: str
    due_at: str
    waited: str | None = Field(default=None, description="how long the case has waited, "
                               "in the workflow's words (reminders only)")


class DeadLetteredData(_Data):
    case_id: int | None
    notification_kind: str
    channel: str
    agency_id: int
    attempts: int
    error: str | None
    endpoint_disabled: bool
    dead_message_id: str
    payload_type: str | None
    timer: str | None
    step: int | None
    escalation_id: int | None


class TestData(_Data):
    text: str


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timestamp: str = Field(description="when it happened, ISO 8601 with offset")


class CaseOpened(WebhookEvent):
    """A case was opened: the receipt to the referrer, and notices of entered states."""

    type: Literal["case.opened"]
    data: NoticeData


class CaseTransitioned(WebhookEvent):
    """A transition's ``notify:`` or a state entered by it told the recipient."""

    type: Literal["case.transitioned"]
    data: NoticeData


class CaseClosed(WebhookEvent):
    """The case closed: its outcome, to the referrer."""

    type: Literal["case.closed"]
    data: ClosedData


class CaseReminder(WebhookEvent):
    """A timer's reminder (or a repeat of it) to the roles it names."""

    type: Literal["case.reminder"]
    data: TimerData


class CaseEscalated(WebhookEvent):
    """A ladder step of a timer."""

    type: Literal["case.escalated"]
    data: TimerData


class NotificationDeadLettered(WebhookEvent):
    """A notification could not be delivered; sent to the case's coordinator."""

    type: Literal["notification.dead_lettered"]
    data: DeadLetteredData


class NotificationTest(WebhookEvent):
    """A test notification an administrator sent."""

    type: Literal["notification.test"]
    data: TestData


WEBHOOK_MODELS: dict[str, type[WebhookEvent]] = {
    "case.opened": CaseOpened,
    "case.transitioned": CaseTransitioned,
    "case.closed": CaseClosed,
    "case.reminder": CaseReminder,
    "case.escalated": CaseEscalated,
    "notification.dead_lettered": NotificationDeadLettered,
    "notification.test": NotificationTest,
}
