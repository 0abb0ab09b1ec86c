"""The log channel: the fallback for agencies with neither webhook nor email.

With ``REFERRAL_LOG_CHANNEL_PATH`` set, each notification is one JSON line in that file
(created readable by its owner only: the lines carry case details). Without it, a
notification must still be seen by someone rather than "delivered" into a log nobody
reads, yet a terminal is no place for case details: stderr gets one line with the
message id, its kind and the agency id only, and the way to keep the full notices.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

from engine.notify.channels import Message, SendResult

FILE_MODE = 0o600


class LogChannel:
    """Appends one JSON line per notification to a file, or names it on stderr."""

    name = "log"

    def __init__(self, path: str | Path | None = None, *, stream: TextIO | None = None) -> None:
        self.path = Path(path) if path else None
        self._stream = stream

    def send(self, message: Message, *, now: datetime) -> SendResult:
        if self.path is None:
            return self._announce(message)
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
        try:
            # One write() of a whole line in append mode: concurrent writers never
            # interleave within a line on a local file system.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as exc:
            return SendResult("retry", error=f"log channel: {exc}")
        return SendResult("delivered")

    def _announce(self, message: Message) -> SendResult:
        # Resolved on each send, so a redirected or captured stderr is the one written to.
        stream = self._stream or sys.stderr
        stream.write(
            f"log channel: {message.kind} {message.message_id} for agency "
            f"{message.agency_id} (details not shown; set REFERRAL_LOG_CHANNEL_PATH to "
            "keep notices in a file)\n"
        )
        stream.flush()
        return SendResult("delivered")
