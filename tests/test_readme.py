"""The README, followed as written: every ``referral`` command in it exists with the
options it shows, ``make run PORT=...`` runs what it says, and the walkthrough blocks run
in order against a real ``referral serve`` in a fresh directory."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from conftest import REPO, free_port, need_service

from engine.cli import app

README = (REPO / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 60.0


def _shell_blocks(text: str) -> list[str]:
    return [m[1] for m in re.finditer(r"```sh\n(.*?)```", text, re.S)]


def _referral_lines() -> list[str]:
    lines = []
    for block in _shell_blocks(README):
        for line in block.splitlines():
            found = re.search(r"(?:^|\$\()\s*(?:\.venv/bin/)?referral (.*)", line.strip())
            if found:
                lines.append(found[1])
    return lines


def _command(words: list[str]) -> tuple[Any, list[str]]:
    """The click command the words name, and the words naming it."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command, path = sub, [*path, word]
    return command, path


@pytest.mark.parametrize("line", _referral_lines())
def test_every_referral_command_in_the_readme_exists_with_its_options(line: str) -> None:
    command, path = _command(line.split())
    assert path, f"not a referral command: {line}"
    assert not hasattr(command, "commands"), f"a group, not a command: {line}"
    known = {opt for param in command.params for opt in param.opts}
    shown = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", line.split("#")[0]))
    assert shown <= known, (line, shown - known)


def test_make_run_passes_the_port_on() -> None:
    done = subprocess.run(["make", "-n", "-C", str(REPO), "run", "PORT=8123"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert "referral serve --host 127.0.0.1 --port 8123" in done.stdout
    # On first use (forced with -B): say what the long install is, and let pip talk.
    first = subprocess.run(["make", "-n", "-B", "-C", str(REPO), "run"], capture_output=True,
                           text=True, timeout=60, check=True).stdout
    assert "first run only; a few minutes" in first
    assert "--quiet" not in first


def _walkthrough(port: int) -> str:
    marked = re.findall(r"<!-- walkthrough -->\n\s*```sh\n(.*?)```", README, re.S)
    assert len(marked) >= 4
    script = "\n".join(re.sub(r"^ {3}", "", block, flags=re.M) for block in marked)
    return script.replace("localhost:8000", f"127.0.0.1:{port}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path, Any]]:
    """``referral serve`` in a fresh directory, as ``make run`` starts it."""
    (tmp_path / "workflows").symlink_to(REPO / "workflows")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFERRAL_")}
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([str(BIN / "referral"), "serve", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "referral serve did not start in time"
            time.sleep(0.1)
        yield port, tmp_path, env
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_the_walkthrough_runs_as_written(served: tuple[int, Path, Any]) -> None:
    port, folder, env = served
    if shutil.which("curl") is None:
        need_service("curl", "the README's walkthrough calls the API with curl")
    env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}
    script = "set -euo pipefail\n" + _walkthrough(port)
    done = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{shlex.quote(script)}"
    out = done.stdout
    assert "timer triage: reminder to 1 agency [escalation 1]" in out
    assert '"acknowledged_at"' in out
    assert "ack by coordinator (agency 1)" in out
    assert "listed in the order recorded (seq)" in done.stderr
    assert "case closed in" in out or "case still open in" in out
    notices = folder / "notifications.jsonl"
    assert stat.S_IMODE(notices.stat().st_mode) == 0o600
    assert "Worrying remarks" not in (folder / "serve.log").read_text()


def test_make_clean_removes_what_the_walkthrough_leaves() -> None:
    done = subprocess.run(["make", "-n", "-C", str(REPO), "clean"], capture_output=True,
                          text=True, timeout=60, check=True)
    for left in (".venv", "referral.db", "notifications.jsonl"):
        assert left in done.stdout
