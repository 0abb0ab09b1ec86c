"""``referral serve`` refuses a taken port before it prints a token or touches anything."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app


def test_a_taken_port_is_one_clear_message_and_nothing_else(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        db = tmp_path / "referral.db"
        result = CliRunner().invoke(
            app,
            ["serve", "--port", str(port)],
            env={"REFERRAL_DATABASE_URL": f"sqlite:///{db}", "REFERRAL_ADMIN_TOKEN": None},
        )
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert f"make run PORT={port + 1}" in result.stderr
    assert "admin token" not in result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not db.exists()
