"""Notices on events: what a case's opening, transitions, entered states and closing tell.

:func:`plan` is pure: from the definition and what one event did it lists the notices
due (a receipt to the referrer on opening, the ``notify:`` of the transition and of each
state entered, the outcome to the referrer on closing). :func:`rows` turns them into
outbox rows through :mod:`engine.notify.outbox`, the one place a notification row is made,
so every payload carries only what its recipient may see; the caller writes them with
:func:`engine.store.writers.add_notifications` in the event's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.cases.access import holders
from engine.definitions.model import Definition, Notice, TransitionDef
from engine.notify import outbox
from engine.store.caserow import CaseRow
from engine.store.fastpath import Cursor
from engine.timers.sql import statements

OPENED, TRANSITIONED, CLOSED = "opened", "transitioned", "closed"

RECEIPT = ("Referral received", "Your referral has been received and a case opened.")
CLOSED_NOTICE = ("Case closed", "The case has been closed.")


@dataclass(frozen=True, slots=True)
class Planned:
    """One notice to send: its kind (the webhook type's suffix), recipients and words."""

    kind: str
    notice: Notice
    # What caused it, for the audit history and a warning about unheld roles.
    about: str


def plan(
    defn: Definition,
    *,
    transition: TransitionDef | None,
    entered: Iterable[str],
    closed: bool,
) -> list[Planned]:
    """The notices one event sends; ``transition`` None is the case's opening."""
    kind = OPENED if transition is None else TRANSITIONED
    planned: list[Planned] = []
    referrer = defn.referrer_role
    if transition is None and referrer is not None:
        planned.append(Planned(OPENED, Notice((referrer,), *RECEIPT), "receipt"))
    if transition is not None:
        planned += [Planned(kind, n, f"transition {transition.trigger}")
                    for n in transition.notices]
    for path in sorted(entered):
        state = defn.states.get(path)
        if state is not None:
            planned += [Planned(kind, n, f"entering {path}") for n in state.notices]
    if closed and referrer is not None:
        planned.append(Planned(CLOSED, Notice((referrer,), *CLOSED_NOTICE), "outcome"))
    return planned


@dataclass(slots=True)
class Written:
    """The outbox rows of an event's notices, and what its audit event records."""

    rows: list[dict[str, Any]]
    record: list[dict[str, Any]]
    warnings: list[dict[str, Any]]


def rows(
    cur: Cursor,
    case: CaseRow,
    defn: Definition,
    planned: Sequence[Planned],
    *,
    trigger: str | None,
    now: datetime,
) -> Written:
    """Outbox rows for ``planned`` on ``case`` as it stands after the event."""
    written = Written([], [], [])
    if not planned:
        return written
    assigned = holders(cur, case.id).assignments
    resolved = [(p, *outbox.plan(assigned, p.notice.to, case_id=case.id, reason=f"notice "
                                 f"({p.about})")) for p in planned]
    wanted = sorted({a for _, res, _ in resolved for a in res.by_agency})
    agencies: dict[int, Any] = {}
    if wanted:
        agencies = {r.id: r for r in cur.conn.execute(statements(cur.conn).agencies,
                                                       {"ids": wanted})}
    for p, resolution, warning in resolved:
        if warning is not None:
            written.warnings.append(warning)
        info = {"subject": p.notice.subject, "text": p.notice.text, "trigger": trigger,
                "at": now.isoformat()}
        made = outbox.plan_rows(case, defn, resolution, assigned, agencies, kind=p.kind,
                                info=info, now=now)
        if p.kind == CLOSED:
            for row in made:
                row["payload"]["outcome"] = _outcome(defn, case, assigned, row["agency_id"])
        written.rows += made
        written.record.append({"kind": p.kind, "about": p.about, "roles": list(p.notice.to),
                               "messages": [r["message_id"] for r in made]})
    return written


def _outcome(
    defn: Definition, case: CaseRow, assigned: dict[str, int], agency_id: int
) -> Any:
    """The outcome if its recipient may read the outcome field, else None."""
    name = defn.outcome_field
    if name is None:
        return None
    held = {r for r, a in assigned.items() if a == agency_id}
    return outbox.visible_fields(defn, {name: (case.data or {}).get(name)}, held).get(name)
