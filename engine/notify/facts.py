"""What delivery records about a notification: when it was due, and the facts of a dead
letter (for its audit event and the coordinator's alert)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.notify.channels import SendResult
from engine.store.tables import Notification

DEAD_LETTER = "dead_letter"


def due_time(row: Notification) -> datetime:
    """When the notified thing was due: its timer's due time, else when it was written."""
    due = row.payload.get("due_at")
    if isinstance(due, str):
        try:
            return datetime.fromisoformat(due)
        except ValueError:
            pass
    created = row.created_at
    return created if created.tzinfo else created.replace(tzinfo=UTC)


def dead_facts(row: Notification, channel: str, sent: SendResult) -> dict[str, Any]:
    return {
        "message_id": row.message_id,
        "notification_kind": row.kind,
        "channel": channel,
        "agency_id": row.agency_id,
        "attempts": row.attempts,
        "error": sent.error,
        "endpoint_disabled": sent.outcome == "gone",
    }


def alert_payload(row: Notification, facts: dict[str, Any]) -> dict[str, Any]:
    """``message_id`` names the alert itself; the dead notification is ``dead_message_id``."""
    return {
        "type": DEAD_LETTER,
        "case_id": row.case_id,
        **{k: v for k, v in facts.items() if k != "message_id"},
        "dead_message_id": row.message_id,
        "payload_type": row.payload.get("type"),
        "timer": row.payload.get("timer"),
        "step": row.payload.get("step"),
        "escalation_id": row.payload.get("escalation_id"),
    }
