"""Who may act on or read a case, and what of its data they may see.

An agency holding no role on a case is told the case does not exist (never "forbidden"),
so case ids leak nothing. Field visibility follows ``visible_to``, which restricts every
reader, the coordinator and the system included.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.definitions.model import SYSTEM_ROLE, Definition
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.models import CaseAssignment

# Keys of an audit event's data that hold field values (and so are filtered by reader).
FIELD_KEYS = ("changes",)


def roles_on_case(session: Session, case_id: int, agency_id: int) -> frozenset[str]:
    rows = session.scalars(
        select(CaseAssignment.role).where(
            CaseAssignment.case_id == case_id, CaseAssignment.agency_id == agency_id
        )
    )
    return frozenset(rows)


def assignments(session: Session, case_id: int) -> dict[str, int]:
    rows = session.execute(
        select(CaseAssignment.role, CaseAssignment.agency_id)
        .where(CaseAssignment.case_id == case_id)
        .order_by(CaseAssignment.role)
    )
    return {role: agency for role, agency in rows}


def not_found(case_id: int) -> NotFound:
    return NotFound(f"case {case_id} not found", case_id=case_id)


def reader_roles(
    session: Session, case_id: int, agency_id: int | None, role: str | None = None
) -> frozenset[str]:
    """The roles a reader reads with; NotFound for an agency holding none on the case.

    ``agency_id`` None is the system/administrator, who always reads as ``system``: a
    preview as another role would hand the administrator fields (therapy notes) that
    ``visible_to`` keeps from it. With ``role`` an agency reads in that role only.
    """
    if agency_id is None:
        if role not in (None, SYSTEM_ROLE):
            raise InvalidInput(
                f"the administrator reads case {case_id} as {SYSTEM_ROLE!r} only; "
                f"read as {role!r} with that agency's token",
                case_id=case_id,
                role=role,
            )
        return frozenset({SYSTEM_ROLE})
    held = roles_on_case(session, case_id, agency_id)
    if not held:
        raise not_found(case_id)
    if role is None:
        return held
    if role not in held:
        raise Forbidden(
            f"your agency does not hold the role {role!r} on case {case_id}",
            case_id=case_id,
            role=role,
            held=sorted(held),
        )
    return frozenset({role})


def check_actor(session: Session, case_id: int, agency_id: int | None, role: str) -> None:
    """An agency may act only in a role it holds on the case; ``system`` is the engine's."""
    if agency_id is None:
        return
    held = roles_on_case(session, case_id, agency_id)
    if not held:
        raise not_found(case_id)
    if role == SYSTEM_ROLE:
        raise Forbidden("the system role is reserved for the engine", case_id=case_id, role=role)
    if role not in held:
        raise Forbidden(
            f"your agency does not hold the role {role!r} on case {case_id} "
            f"(it holds {', '.join(sorted(held))})",
            case_id=case_id,
            role=role,
            held=sorted(held),
        )


def filter_fields(
    defn: Definition, data: Mapping[str, Any], roles: frozenset[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The fields the reader may see, and the names of those withheld (never their values)."""
    shown: dict[str, Any] = {}
    withheld: list[str] = []
    for name, value in data.items():
        if defn.field_visible(name, roles):
            shown[name] = value
        else:
            withheld.append(name)
    return shown, tuple(sorted(withheld))


def filter_event_data(
    defn: Definition, data: Mapping[str, Any], roles: frozenset[str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """An audit event's data with restricted field values left out."""
    result = dict(data)
    withheld: set[str] = set()
    for key in FIELD_KEYS:
        values = data.get(key)
        if isinstance(values, Mapping):
            result[key], hidden = filter_fields(defn, values, roles)
            withheld.update(hidden)
    return result, tuple(sorted(withheld))
