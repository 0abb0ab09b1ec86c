"""The log channel: the fallback for agencies with neither webhook nor email."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from engine.notify.channels import Message, SendResult

logger = logging.getLogger("referral.notifications")


class LogChannel:
    """Appends one JSON line per notification to a file, or logs it when no path is set."""

    name = "log"

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None

    def send(self, message: Message, *, now: datetime) -> SendResult:
        line = json.dumps(
            {
                "message_id": message.message_id,
                "at": now.isoformat(),
                "agency_id": message.agency_id,
                "agency": message.agency_name,
                "kind": message.kind,
                "payload": message.payload,
            },
            sort_keys=True,
            default=str,
        )
        if self.path is None:
            logger.info("notification %s", line)
            return SendResult("delivered")
        try:
            # One write() of a whole line in append mode: concurrent writers never interleave
            # within a line on a local file system.
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:
            return SendResult("retry", error=f"log channel: {exc}")
        return SendResult("delivered")
