"""No import circles among engine modules, read from the source with ``ast``.

Every ``import``/``from`` statement counts, wherever it stands: one under
``if TYPE_CHECKING:`` or inside a function hides a circle from the interpreter, not from
a reader, who still cannot understand either module without the other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.Module, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The engine modules ``tree`` (module ``name``) names in any import statement."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from engine.x import y`` imports module engine.x.y when there is one; when
            # every name is a submodule, the package's own face is not what is used.
            submodules = {f"{base}.{alias.name}" for alias in node.names}
            found |= submodules
            if not submodules <= known:
                found.add(base)
    return {m for m in found if m in known and m != name}


def import_graph(root: Path = ENGINE) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    known = set(files)
    return {
        name: imported(ast.parse(path.read_text(), str(path)), name,
                       path.name == "__init__.py", known)
        for name, path in files.items()
    }


class _Tarjan:
    """Strongly connected components of a graph (Tarjan's algorithm)."""

    def __init__(self, graph: Mapping[str, Iterable[str]]) -> None:
        self.graph = graph
        self.index: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.stack: list[str] = []
        self.on_stack: set[str] = set()
        self.found: list[list[str]] = []

    def visit(self, node: str) -> None:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        for nxt in self.graph.get(node, ()):
            if nxt not in self.index:
                self.visit(nxt)
                self.low[node] = min(self.low[node], self.low[nxt])
            elif nxt in self.on_stack:
                self.low[node] = min(self.low[node], self.index[nxt])
        if self.low[node] == self.index[node]:
            component = self._pop(node)
            if len(component) > 1:
                self.found.append(sorted(component))

    def _pop(self, node: str) -> list[str]:
        component = []
        while True:
            member = self.stack.pop()
            self.on_stack.discard(member)
            component.append(member)
            if member == node:
                return component


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module, each sorted."""
    search = _Tarjan(graph)
    for node in sorted(graph):
        if node not in search.index:
            search.visit(node)
    return sorted(search.found)


def test_cycles_finds_a_circle_and_ignores_a_chain() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_type_checking_and_relative_imports_count() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from .sibling import thing\n"
        "if TYPE_CHECKING:\n"
        "    from engine.pkg.other import Other\n"
        "def f() -> None:\n"
        "    import engine.pkg.late\n"
    )
    known = {"engine.pkg.sibling", "engine.pkg.other", "engine.pkg.late", "engine.pkg.me"}
    assert imported(tree, "engine.pkg.me", False, known) == known - {"engine.pkg.me"}


def test_the_graph_sees_real_imports() -> None:
    graph = import_graph()
    assert "engine.definitions.model" in graph["engine.definitions.loader"]


def test_no_import_circle_in_engine() -> None:
    found = cycles(import_graph())
    assert found == [], "import circles: " + "; ".join(" <-> ".join(c) for c in found)
