"""Who may act on or read a case, and what of its data they may see.

An agency holding no role on a case is told the case does not exist (never "forbidden"),
so case ids leak nothing. Field visibility follows ``visible_to``, which restricts every
reader, the coordinator and the system included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select

from engine.definitions.model import SYSTEM_ROLE, Definition
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.store.fastpath import Cursor, Prepared
from engine.store.tables import Base

# Keys of an audit event's data that hold field values (and so are filtered by reader).
FIELD_KEYS = ("changes",)

_assigned = Base.metadata.tables["case_assignments"]
_agencies = Base.metadata.tables["agencies"]
# Every holder of a role on the case with the agency's name: the access check, the
# reader's roles and the view's assignments all come from this one statement.
_HOLDERS = Prepared(
    select(_assigned.c.role, _assigned.c.agency_id, _agencies.c.name)
    .select_from(_assigned.join(_agencies, _agencies.c.id == _assigned.c.agency_id))
    .where(_assigned.c.case_id == bindparam("b_case"))
    .order_by(_assigned.c.role)
)


@dataclass(frozen=True, slots=True)
class Holders:
    """Who holds which role on a case, and the names of those agencies."""

    assignments: dict[str, int]  # role -> agency id, by role
    names: dict[int, str]

    def roles_of(self, agency_id: int) -> frozenset[str]:
        return frozenset(role for role, held in self.assignments.items() if held == agency_id)


def holders(cur: Cursor, case_id: int) -> Holders:
    assignments: dict[str, int] = {}
    names: dict[int, str] = {}
    for role, agency_id, name in _HOLDERS.rows(cur, {"b_case": case_id}):
        assignments[role] = agency_id
        names[agency_id] = name
    return Holders(assignments, names)


def not_found(case_id: int) -> NotFound:
    return NotFound(f"case {case_id} not found", case_id=case_id)


def reader_roles(
    found: Holders, case_id: int, agency_id: int | None, role: str | None = None
) -> frozenset[str]:
    """The roles a reader reads with, from the case's :func:`holders`; NotFound for an
    agency holding none on the case.

    ``agency_id`` None is the system/administrator, who always reads as ``system``: a
    preview as another role would hand the administrator fields (therapy notes) that
    ``visible_to`` keeps from it. With ``role`` an agency reads in that role only.
    """
    if agency_id is None:
        _admin_reads_as_system(case_id, role)
        return frozenset({SYSTEM_ROLE})
    return _reader_roles_in(found.roles_of(agency_id), case_id, role)


def _admin_reads_as_system(case_id: int, role: str | None) -> None:
    if role not in (None, SYSTEM_ROLE):
        raise InvalidInput(
            f"the administrator reads case {case_id} as {SYSTEM_ROLE!r} only; "
            f"read as {role!r} with that agency's token",
            case_id=case_id,
            role=role,
        )


def _reader_roles_in(held: frozenset[str], case_id: int, role: str | None) -> frozenset[str]:
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


def check_actor(found: Holders, case_id: int, agency_id: int | None, role: str) -> None:
    """An agency may act only in a role it holds on the case (from its :func:`holders`);
    ``system`` is the engine's."""
    if agency_id is None:
        return
    _check_held(found.roles_of(agency_id), case_id, role)


def _check_held(held: frozenset[str], case_id: int, role: str) -> None:
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
