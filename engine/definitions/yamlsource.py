"""Safe YAML reading that remembers where every value and key came from.

PyYAML's ``SafeLoader`` follows YAML 1.1, where ``on``, ``off``, ``yes``, ``no``, ``y`` and
``n`` are booleans: a state named ``on`` or a role ``no`` would silently turn into
``True``/``False``. Here only ``true``/``false`` are booleans (as in YAML 1.2), dates stay
strings (the schema parses them where a date is expected) and unknown tags are refused.

The result is plain Python data plus two mark tables keyed by the path of each node
(a tuple of mapping keys and list indexes), the shape pydantic uses for error ``loc``.

Positions are computed from the text (a line ends at ``\n`` only), never taken from
PyYAML's line numbers: it also counts U+0085, U+2028 and U+2029 as line breaks, so every
``path:line:col`` after one of them inside a string would point at the wrong line.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.definitions.model import Mark
from engine.errors import Problem

Path = tuple[Any, ...]

# Aliases can expand a small file into a huge tree ("billion laughs"); no real
# workflow comes near this many nodes.
MAX_NODES = 50_000
NESTED_TOO_DEEPLY = "the document is nested too deeply"

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class MarkedLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars (no 1.1 yes/no/on/off booleans)."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}


MarkedLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
MarkedLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
MarkedLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
MarkedLoader.add_implicit_resolver(
    _NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
MarkedLoader.add_implicit_resolver(_MERGE, re.compile(r"^<<$"), ["<"])

_FastLoader: type | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _CMarkedLoader(yaml.CSafeLoader):  # type: ignore[misc, name-defined]
        """libyaml's parser (about 20x faster) with the same scalar resolution."""

        yaml_implicit_resolvers = MarkedLoader.yaml_implicit_resolvers

    _FastLoader = _CMarkedLoader


def _compose(text: str) -> Node | None:
    if _FastLoader is not None:
        try:
            return yaml.compose(text, Loader=_FastLoader)  # type: ignore[no-any-return]
        except yaml.YAMLError:
            pass  # parse again in Python: its messages are clearer, positions in characters
    return yaml.compose(text, Loader=MarkedLoader)


@dataclass
class Document:
    """Plain data of one YAML document and where each part of it stands."""

    data: Any
    path: str
    marks: dict[Path, Mark] = field(default_factory=dict)
    key_marks: dict[Path, Mark] = field(default_factory=dict)
    # Mistakes that still leave usable data (a duplicate key: the first one is kept), so
    # the later stages can run and report theirs too.
    problems: list[Problem] = field(default_factory=list)

    def mark(self, loc: Path) -> Mark:
        """The mark of the value at ``loc``, or of its nearest existing ancestor."""
        for end in range(len(loc), -1, -1):
            found = self.marks.get(tuple(loc[:end]))
            if found is not None:
                return found
        return Mark(1, 1)

    def key_mark(self, loc: Path) -> Mark:
        """The mark of the mapping key naming ``loc`` (falling back to its value)."""
        found = self.key_marks.get(tuple(loc))
        return found if found is not None else self.mark(loc)

    def problem(self, loc: Path, message: str, hint: str | None = None, *,
                key: bool = False) -> Problem:
        m = self.key_mark(loc) if key else self.mark(loc)
        return Problem(self.path, m.line, m.col, message, hint)


class YamlProblems(Exception):
    """The text is not one readable YAML mapping; ``problems`` says why and where."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(p.format() for p in problems))
        self.problems = problems


def parse_yaml(text: str, path: str = "<string>", *, keep_going: bool = False) -> Document:
    """Parse ``text`` into a :class:`Document`, or raise :class:`YamlProblems`.

    With ``keep_going``, duplicate keys do not raise: they are left in
    ``Document.problems`` (the first occurrence kept) for the caller to report along
    with whatever its later checks find.
    """
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        raise YamlProblems([_syntax_problem(exc, path, _Lines(text))]) from None
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        raise YamlProblems([Problem(path, line, col, f"unreadable character: {exc.reason}")]) \
            from None
    except RecursionError:
        raise YamlProblems([Problem(path, 1, 1, NESTED_TOO_DEEPLY)]) from None
    except yaml.YAMLError as exc:
        raise YamlProblems([Problem(path, 1, 1, f"YAML error: {exc}")]) from None
    if node is None:
        raise YamlProblems([Problem(
            path, 1, 1, "the file is empty: expected a workflow definition "
            "(a mapping with workflow, version, title, timezone, roles, states, transitions)",
        )])
    builder = _Builder(path, _Lines(text))
    try:
        data = builder.convert(node, ())
    except RecursionError:
        builder.problems.append(Problem(path, 1, 1, NESTED_TOO_DEEPLY))
        data = None
    if builder.problems or (builder.duplicates and not keep_going):
        raise YamlProblems(sorted(builder.problems + builder.duplicates,
                                  key=lambda p: (p.line, p.col)))
    doc = Document(data, path, builder.marks, builder.key_marks, builder.duplicates)
    if not isinstance(data, dict):
        m = doc.mark(())
        raise YamlProblems([Problem(
            path, m.line, m.col,
            f"expected a mapping at the top level (workflow, version, ...), got {kind_of(data)}",
        )])
    return doc


def kind_of(value: Any) -> str:
    """The YAML word for a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class _Lines:
    """Line and column (1-based) of a character index, counting ``\n`` only."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, index: int) -> tuple[int, int]:
        line = bisect_right(self.starts, index)
        return line, index - self.starts[line - 1] + 1

    def mark(self, mark: yaml.Mark) -> Mark:
        return Mark(*self.at(mark.index))


def _position(text: str, index: int) -> tuple[int, int]:
    return _Lines(text).at(index)


def _syntax_problem(exc: yaml.MarkedYAMLError, path: str, lines: _Lines) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = lines.at(mark.index) if mark is not None else (1, 1)
    problem = exc.problem or "invalid YAML"
    if "expected a single document" in (exc.context or ""):
        return Problem(path, line, col,
                       "a workflow file holds exactly one YAML document, found a second one here",
                       "remove the '---' separator or split the file")
    message = f"YAML syntax error: {problem}"
    if exc.context:
        message += f" ({exc.context}"
        if exc.context_mark is not None and exc.context_mark is not mark:
            message += f" at line {lines.at(exc.context_mark.index)[0]}"
        message += ")"
    return Problem(path, line, col, message)


class _Builder:
    """Turns composed nodes into plain data, recording marks and YAML-level problems."""

    def __init__(self, path: str, lines: _Lines) -> None:
        self.path = path
        self.lines = lines
        self.marks: dict[Path, Mark] = {}
        self.key_marks: dict[Path, Mark] = {}
        self.problems: list[Problem] = []
        self.duplicates: list[Problem] = []
        self.count = 0
        self.active: set[int] = set()

    def fail(self, node: Node, message: str, hint: str | None = None) -> None:
        m = self.lines.mark(node.start_mark)
        self.problems.append(Problem(self.path, m.line, m.col, message, hint))

    def convert(self, node: Node, loc: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self.fail(node, f"the document is too large (more than {MAX_NODES} values)")
            return None
        self.marks[loc] = self.lines.mark(node.start_mark)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self.active:
            self.fail(node, "recursive YAML alias")
            return None
        if node.tag not in (_SEQ, _MAP):
            # ``!!python/object {}``: refused like tagged scalars rather than read as data.
            self.fail(node, f"unsupported YAML tag {node.tag!r}",
                      "remove the tag; plain values suffice")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.convert(child, (*loc, i)) for i, child in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self.mapping(node, loc)
        finally:
            self.active.discard(id(node))
        self.fail(node, "unsupported YAML node")
        return None

    def mapping(self, node: MappingNode, loc: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first: dict[Any, Mark] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.fail(key_node, "mapping keys must be plain names, not lists or mappings")
                continue
            if key_node.tag == _MERGE:
                self.fail(key_node, "YAML merge keys ('<<') are not supported",
                          "write the keys out in full")
                continue
            key = self.scalar(key_node)
            if key is None or isinstance(key, float):
                key = key_node.value
            km = self.lines.mark(key_node.start_mark)
            if key in first:
                before = first[key]
                self.duplicates.append(Problem(
                    self.path, km.line, km.col, f"duplicate key {key!r} (first defined at line "
                    f"{before.line}, column {before.col})", "merge the two entries or rename "
                    f"one; the first is at {self.path}:{before.line}:{before.col}"))
                continue
            first[key] = km
            self.key_marks[(*loc, key)] = km
            result[key] = self.convert(value_node, (*loc, key))
        return result

    def scalar(self, node: ScalarNode) -> Any:
        text: str = node.value
        tag = node.tag
        if tag in (_STR, _MERGE):
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            self.fail(node, f"not a boolean: {text!r} (use true or false)")
            return None
        try:
            if tag == _INT:
                return int(text)
            if tag == _FLOAT:
                return float(text)
        except ValueError:
            self.fail(node, f"not a number: {text!r}")
            return None
        self.fail(node, f"unsupported YAML tag {tag!r}", "remove the tag; plain values suffice")
        return None
