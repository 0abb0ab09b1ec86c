"""``subjects:``: its checks (roles exist, pool is a name) and its frozen form.

Absent, the subject is visible to and matched by the roles ``coordinator`` and
``police`` where the workflow declares them: never the referrer, unless a definition
says so.
"""

from __future__ import annotations

from engine.definitions.model import COORDINATOR_ROLE, SYSTEM_ROLE, SubjectsDef
from engine.definitions.names import IDENTIFIER, suggest
from engine.definitions.schema import WorkflowSpec
from engine.definitions.yamlsource import Document
from engine.errors import Problem

DEFAULT_ROLES = (COORDINATOR_ROLE, "police")
DEFAULT_POOL = "default"


def check_subjects(doc: Document, spec: WorkflowSpec) -> list[Problem]:
    """Every problem with ``subjects:``, located at the offending name."""
    subjects = spec.subjects
    if subjects is None:
        return []
    declared = [r for r in spec.roles if r != SYSTEM_ROLE]
    problems: list[Problem] = []
    for key in ("visible_to", "match_by"):
        for i, role in enumerate(getattr(subjects, key) or ()):
            if role not in declared:
                problems.append(doc.problem(("subjects", key, i), f"unknown role '{role}'",
                                            suggest(role, declared)))
    seeing = set(subjects.visible_to) if subjects.visible_to is not None else set(
        _defaults(declared))
    for i, role in enumerate(subjects.match_by or ()):
        if role in declared and role not in seeing:
            problems.append(doc.problem(
                ("subjects", "match_by", i),
                f"role '{role}' may match subjects but not see them",
                "add it to subjects.visible_to",
            ))
    if subjects.pool is not None and not IDENTIFIER.fullmatch(subjects.pool):
        problems.append(doc.problem(("subjects", "pool"),
                                    f"pool name {subjects.pool!r} is not a valid identifier"))
    return problems


def _defaults(roles: list[str]) -> frozenset[str]:
    return frozenset(r for r in DEFAULT_ROLES if r in roles)


def build_subjects(spec: WorkflowSpec) -> SubjectsDef:
    roles = [r for r in spec.roles if r != SYSTEM_ROLE]
    subjects = spec.subjects
    if subjects is None:
        return SubjectsDef(_defaults(roles), _defaults(roles), DEFAULT_POOL)
    visible = frozenset(subjects.visible_to) if subjects.visible_to is not None else _defaults(
        roles)
    matching = frozenset(subjects.match_by) if subjects.match_by is not None else (
        visible & _defaults(roles))
    return SubjectsDef(visible, matching, subjects.pool or DEFAULT_POOL)
