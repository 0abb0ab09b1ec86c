"""The log channel: a 0600 file when a path is set, else one value-free line on stderr."""

from __future__ import annotations

import io
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.notify.channels import Message
from engine.notify.channels.log import LogChannel

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MESSAGE = Message(
    message_id="msg_42",
    kind="escalation",
    payload={"case_id": 7, "data": {"therapy_notes": "private words"}, "timer": "triage"},
    agency_id=3,
    agency_name="Youth Clinic",
)


def test_without_a_path_one_line_on_stderr_carries_no_field_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = LogChannel(None).send(MESSAGE, now=NOW)
    assert result.outcome == "delivered"
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("log channel: escalation msg_42 for agency 3")
    assert "REFERRAL_LOG_CHANNEL_PATH" in line
    for secret in ("private words", "therapy_notes", "Youth Clinic", "triage"):
        assert secret not in line


def test_a_given_stream_is_written_instead() -> None:
    stream = io.StringIO()
    LogChannel(None, stream=stream).send(MESSAGE, now=NOW)
    assert stream.getvalue().count("\n") == 1


def test_the_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    channel = LogChannel(path)
    assert channel.send(MESSAGE, now=NOW).outcome == "delivered"
    assert channel.send(MESSAGE, now=NOW).outcome == "delivered"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["payload"] == MESSAGE.payload


def test_an_unwritable_file_is_retried(tmp_path: Path) -> None:
    result = LogChannel(tmp_path / "no" / "such" / "dir.jsonl").send(MESSAGE, now=NOW)
    assert result.outcome == "retry" and result.error and "log channel" in result.error
