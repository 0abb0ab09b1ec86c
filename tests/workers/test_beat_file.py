"""Beat's bookkeeping file stays out of the directory beat is started in."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from engine.settings import Settings
from workers.app import create_app


def test_the_beat_schedule_file_is_in_the_temp_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    schedule = Path(create_app(Settings()).conf.beat_schedule_filename)
    assert schedule.parent == Path(tempfile.gettempdir())
    assert not schedule.is_relative_to(tmp_path)


def test_the_beat_schedule_file_can_be_chosen(tmp_path: Path) -> None:
    chosen = str(tmp_path / "beat")
    app = create_app(Settings(beat_schedule_path=chosen))
    assert app.conf.beat_schedule_filename == chosen
