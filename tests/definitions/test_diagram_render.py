"""The shipped workflows' diagrams, rendered by the real tools and checked for readability.

Graphviz must run in CI (``.ci/run`` installs it); locally the DOT tests skip without
``dot``. The Mermaid CLI needs Node and a browser: it runs where ``mmdc`` (or
``REFERRAL_MMDC``) and Chromium (``PUPPETEER_EXECUTABLE_PATH``, else /usr/bin/chromium)
are installed, and skips, saying which is missing, elsewhere.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import IN_CI, REPO

from engine.definitions.diagram import ANY_LABEL, to_dot, to_mermaid
from engine.definitions.loader import load_path
from engine.definitions.model import Definition

SHIPPED = sorted((REPO / "workflows").glob("*.yaml"))
Box = tuple[str, str, float, float, float, float]  # kind, text, x0, y0, x1, y1


def _definition(path: Path) -> Definition:
    return load_path(path)


def _dot() -> str:
    found = shutil.which("dot")
    if found is None:
        if IN_CI:
            pytest.fail("Graphviz `dot` is required in CI (.ci/run installs it)")
        pytest.skip("Graphviz `dot` is not installed (apt-get install graphviz)")
    return found


def _overlapping(boxes: list[Box], slack: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of boxes that overlap, at least one of them an edge label."""
    found = []
    for a, b in itertools.combinations(boxes, 2):
        if "edge" not in (a[0], b[0]):
            continue
        if (a[2] < b[4] - slack and b[2] < a[4] - slack
                and a[3] < b[5] - slack and b[3] < a[5] - slack):
            found.append((a[1], b[1]))
    return found


def _dot_boxes(layout: dict[str, object]) -> list[Box]:
    """Edge label lines (from their draw operations) and node boxes of a ``-Tjson`` layout."""
    boxes: list[Box] = []
    for edge in layout.get("edges", []):  # type: ignore[attr-defined]
        size = 14.0
        for op in edge.get("_ldraw_", []):
            if op["op"] == "F":
                size = op["size"]
            elif op["op"] == "T":
                x, y = op["pt"]
                x0 = {"c": x - op["width"] / 2, "l": x, "r": x - op["width"]}[op["align"]]
                boxes.append(("edge", op["text"], x0, y - size * 0.25, x0 + op["width"],
                              y + size * 0.75))
    for node in layout.get("objects", []):  # type: ignore[attr-defined]
        if "pos" in node and "width" in node:
            x, y = map(float, node["pos"].split(","))
            w, h = float(node["width"]) * 72, float(node["height"]) * 72
            boxes.append(("node", node["name"], x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    return boxes


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_dot_renders_every_shipped_workflow_without_a_warning(path: Path) -> None:
    text = to_dot(_definition(path))
    done = subprocess.run([_dot(), "-Tsvg"], input=text, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    assert "<svg" in done.stdout


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_dot_labels_never_overlap(path: Path) -> None:
    text = to_dot(_definition(path))
    done = subprocess.run([_dot(), "-Tjson"], input=text, capture_output=True, text=True,
                          timeout=60, check=True)
    boxes = _dot_boxes(json.loads(done.stdout))
    assert any(b[0] == "edge" for b in boxes)
    assert _overlapping(boxes) == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_from_any_state_is_one_edge_per_trigger(path: Path) -> None:
    defn = _definition(path)
    source = path.read_text(encoding="utf-8")
    anywhere = set(re.findall(r'trigger: (\w+), from: "\*"', source))
    assert anywhere, "every shipped workflow has a from: \"*\" transition"
    dot, mermaid = to_dot(defn), to_mermaid(defn)
    for trigger in anywhere:
        assert len(re.findall(rf'label="[^"]*\b{trigger}\b', dot)) == 1, trigger
        assert len(re.findall(rf" --> \w+ : (?:[^\n]*<br/>)?{trigger}\b", mermaid)) == 1
    assert f'state "{ANY_LABEL}"' in mermaid


def test_a_loop_on_a_parallel_state_is_not_drawn_on_one_track() -> None:
    defn = _definition(REPO / "workflows" / "community_panel.yaml")
    dot = to_dot(defn)
    # Graphviz drops ltail/lhead naming the cluster the edge is inside.
    for line in dot.splitlines():
        tail = re.search(r'ltail="([^"]+)"', line)
        head = re.search(r'lhead="([^"]+)"', line)
        assert not (tail and head and tail[1] == head[1]), line
    assert "review_plan" in next(line for line in dot.splitlines()
                                 if 'label="support (parallel)' in line)


# -- Mermaid -------------------------------------------------------------------------------

# Where the Mermaid renderer (dagre) puts two labels on one spot whatever the input says:
# opposite edges between a composite and one state. Listed so a new one fails the test.
KNOWN_MERMAID_OVERLAPS = {
    "minor_school": {frozenset({"turns_18", "renew_consent"})},
    "prison_release": {frozenset({"licence_ends", "timer therapy_heartbeat"})},
}

_TRANSLATE = re.compile(r"translate\(\s*([-\d.e]+)[ ,]+([-\d.e]+)\s*\)")


def _svg_boxes(svg: str) -> list[Box]:
    """Every label box of a Mermaid SVG, in page coordinates (transforms accumulated)."""
    boxes: list[Box] = []

    def walk(element: ET.Element, x: float, y: float, kind: str) -> None:
        moved = _TRANSLATE.search(element.get("transform", ""))
        if moved:
            x, y = x + float(moved[1]), y + float(moved[2])
        classes = element.get("class", "").split()
        if element.tag.endswith("foreignObject"):
            w, h = float(element.get("width", 0)), float(element.get("height", 0))
            if w > 0 and h > 0:
                text = "".join(element.itertext())[:40]
                boxes.append((kind, text, x, y, x + w, y + h))
            return
        if "edgeLabel" in classes and element.tag.endswith("g"):
            kind = "edge"
        elif "node" in classes:
            kind = "node"
        for child in element:
            walk(child, x, y, kind)

    walk(ET.fromstring(svg), 0.0, 0.0, "other")
    return boxes


def _mmdc() -> list[str]:
    command = os.environ.get("REFERRAL_MMDC") or shutil.which("mmdc")
    if command is None:
        pytest.skip("the Mermaid CLI is not installed (npm install @mermaid-js/mermaid-cli; "
                    "or set REFERRAL_MMDC)")
    browser = os.environ.get("PUPPETEER_EXECUTABLE_PATH") or "/usr/bin/chromium"
    if not Path(browser).exists():
        pytest.skip(f"no browser for the Mermaid CLI at {browser} (apt-get install chromium)")
    return [command]


@pytest.fixture(scope="module")
def mermaid_svgs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    command = _mmdc()
    folder = tmp_path_factory.mktemp("mermaid")
    browser = os.environ.get("PUPPETEER_EXECUTABLE_PATH") or "/usr/bin/chromium"
    config = folder / "puppeteer.json"
    config.write_text(json.dumps({"executablePath": browser,
                                  "args": ["--no-sandbox", "--disable-gpu"]}))
    svgs: dict[str, str] = {}
    for path in SHIPPED:
        source, target = folder / f"{path.stem}.mmd", folder / f"{path.stem}.svg"
        source.write_text(to_mermaid(_definition(path)), encoding="utf-8")
        done = subprocess.run([*command, "--puppeteerConfigFile", str(config), "-q", "-i",
                               str(source), "-o",
                               str(target)], capture_output=True, text=True, timeout=180,
                              check=False)
        assert done.returncode == 0, f"{path.stem}: {done.stderr[-2000:]}"
        svgs[path.stem] = target.read_text(encoding="utf-8")
    return svgs


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_mermaid_renders_every_shipped_workflow_without_overlapping_labels(
    path: Path, mermaid_svgs: dict[str, str]
) -> None:
    svg = mermaid_svgs[path.stem]
    assert "Syntax error" not in svg
    boxes = _svg_boxes(svg)
    labels = {b[1] for b in boxes if b[0] == "edge"}
    assert "withdraw" in labels or "transfer" in labels
    known = KNOWN_MERMAID_OVERLAPS.get(path.stem, set())
    overlaps = {frozenset(_short(t) for t in pair) for pair in _overlapping(boxes)}
    assert overlaps <= known, overlaps - known


def _short(text: str) -> str:
    """A note's text from its first line (its label box holds the whole note)."""
    return text.split(":")[0] if text.startswith("timer ") else text
