"""``referral validate``: exit codes 0/1/2, the problem format, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from defcases import BASE, CONTRACT_EXAMPLE, variant
from typer.testing import CliRunner

from engine.cli import app

runner = CliRunner()
PROBLEM = re.compile(r"^(?P<path>.+):(?P<line>\d+):(?P<col>\d+): error: (?P<message>.+)$")


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_files_exit_0_with_one_ok_line_each(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", BASE)
    b = write(tmp_path, "b.yaml", CONTRACT_EXAMPLE)
    result = runner.invoke(app, ["validate", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"OK {a}: demo version 1", f"OK {b}: community_panel version 1"]


def test_invalid_file_exits_1_with_located_problems_and_hints(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", variant(("by: [chair]", "by: [chiar]"),
                                              ("version: 1", "version: 0")))
    good = write(tmp_path, "good.yaml", BASE)
    result = runner.invoke(app, ["validate", str(bad), str(good)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == [
        f"{bad}:2:10: error: version: must be a positive integer, got integer 0",
        f"{bad}:17:56: error: unknown role 'chiar'",
        "  hint: did you mean 'chair'?",
        f"OK {good}: demo version 1",
    ]
    assert "1 of 2 files invalid" in result.stderr
    assert "Traceback" not in result.output


def test_directory_validates_its_yaml_files_not_recursively(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", BASE)
    write(tmp_path, "two.yaml", variant(("workflow: demo", "workflow: demo_two")))
    write(tmp_path, "notes.txt", "not yaml")
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested", "broken.yaml", "::: not a workflow")
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"OK {tmp_path / 'one.yaml'}: demo version 1",
        f"OK {tmp_path / 'two.yaml'}: demo_two version 1",
    ]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
    assert "no such file or directory" in missing.stderr
    empty = runner.invoke(app, ["validate", str(tmp_path)])
    assert empty.exit_code == 2
    assert "no *.yaml files" in empty.stderr
    no_args = runner.invoke(app, ["validate"])
    assert no_args.exit_code == 2


def test_garbage_inputs_give_problems_not_tracebacks(tmp_path: Path) -> None:
    files = [
        write(tmp_path, "empty.yaml", ""),
        write(tmp_path, "list.yaml", "- 1\n- 2\n"),
        write(tmp_path, "syntax.yaml", "a: [1,\n"),
        write(tmp_path, "tabs.yaml", "a:\n\t- b\n"),
        write(tmp_path, "markup.yaml", "workflow: '[bold]x[/bold]'\n"),
    ]
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x00\xff\xfe garbage")
    result = runner.invoke(app, ["validate", *map(str, files), str(binary)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    located = [PROBLEM.match(line) for line in result.stdout.splitlines()
               if not line.startswith("  hint:")]
    assert all(located), result.stdout
    assert {m["path"] for m in located if m} == {*map(str, files), str(binary)}
    # Rich markup in a message is printed literally.
    assert "'[bold]x[/bold]'" in result.stdout


def test_the_installed_command(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", variant(("from: screening", "from: screning")))
    script = Path(sys.executable).parent / "referral"
    proc = subprocess.run([str(script), "validate", str(bad)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        f"{bad}:17:28: error: unknown state 'screning'", "  hint: did you mean 'screening'?"]
    assert "Traceback" not in proc.stderr
