"""The subject service against real databases: recording at open, correction, pools,
identifiers, the audit chain, and the purge of subjects no case names any more."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from casekit import EXAMPLE, EXAMPLE_PATH, T0, World, execute, make_world
from sqlalchemy import func, select

from engine.cases import service as cases_service
from engine.cases.audit import verify
from engine.errors import InvalidInput, NotFound
from engine.machine.deploy import deploy
from engine.subjects import service
from engine.subjects.details import SubjectDetails, subject_details
from engine.subjects.tables import Subject, SubjectKey, SubjectName

THRESHOLD = 0.75
HASSAN = subject_details([{"given": "Mohammed", "family": "Al-Hassan"}],
                 date_of_birth=date(2008, 3, 1), locality="Southport")
ALHASAN = subject_details([{"given": "Muhammad", "family": "Alhasan"}],
                          date_of_birth=date(2008, 3, 1))
# The same workflow in a pool of its own, as an exit programme keeps its clients apart.
ISOLATED = EXAMPLE.replace("workflow: community_panel", "workflow: exit_pool") + (
    "\nsubjects: {visible_to: [coordinator], match_by: [coordinator], pool: exit_programme}\n")


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    made = make_world(db_url)
    with made.session() as s:
        deploy(s, ISOLATED, str(EXAMPLE_PATH), now=T0)
    yield made
    made.dispose()


def _case_with(world: World, subject: SubjectDetails, workflow: str = "community_panel") -> int:
    case_id = world.open(workflow=workflow).id
    with world.session() as s:
        service.attach_at_open(s, case_id, subject, agency_id=world.agencies["referrer"],
                               now=world.tick())
    return case_id


def _candidates(world: World, case_id: int, role: str = "police") -> list[int]:
    with world.session() as s:
        found = service.subject_candidates(s, case_id, agency_id=world.agencies[role],
                                   threshold=THRESHOLD)
    return [c.case.case_id for c in found]


def test_the_referrer_gives_the_subject_at_open_but_cannot_read_it_back(world: World) -> None:
    case_id = _case_with(world, ALHASAN)
    with world.session() as s:
        with pytest.raises(NotFound):
            service.show_subject(s, case_id, agency_id=world.agencies["referrer"])
        shown = service.show_subject(s, case_id, agency_id=world.agencies["police"])
        assert [n.family for n in shown.details.names] == ["Alhasan"]
        with pytest.raises(InvalidInput):
            service.attach_at_open(s, case_id, HASSAN, agency_id=world.agencies["referrer"],
                                   now=world.tick())
        with pytest.raises(NotFound):
            service.attach_at_open(s, case_id, HASSAN, agency_id=world.outsider,
                                   now=world.tick())


def test_a_corrected_subject_is_matched_by_its_new_name_only(world: World) -> None:
    earlier = _case_with(world, HASSAN)
    new = _case_with(world, subject_details([{"given": "Jack", "family": "Thompson"}],
                                    date_of_birth=date(2008, 3, 1)))
    assert _candidates(world, new) == []
    with world.session() as s:
        service.attach_subject(s, new, ALHASAN, agency_id=world.agencies["police"],
                               now=world.tick())
    assert _candidates(world, new, "coordinator") == [earlier]
    with world.session() as s:
        assert s.scalar(select(func.count()).select_from(Subject)) == 2
        names = s.scalars(select(SubjectName.family).order_by(SubjectName.id)).all()
        assert names == ["Al-Hassan", "Alhasan"]


def test_cases_of_another_pool_are_never_candidates(world: World) -> None:
    shared = _case_with(world, HASSAN)
    isolated = _case_with(world, HASSAN, workflow="exit_pool")
    new = _case_with(world, ALHASAN)
    assert _candidates(world, new) == [shared]
    assert _candidates(world, isolated, "coordinator") == []
    with world.session() as s, pytest.raises(NotFound):
        # The exit pool's definition keeps its subjects from the police.
        service.subject_candidates(s, isolated, agency_id=world.agencies["police"],
                           threshold=THRESHOLD)


def test_a_shared_identifier_finds_a_case_whatever_the_name(world: World) -> None:
    earlier = _case_with(world, subject_details([{"given": "John", "family": "Smith"}],
                                        identifiers={"pnc": "08/123456A"}))
    new = _case_with(world, subject_details([{"given": "Yusuf", "family": "Khalid"}],
                                    birth_year=1999, identifiers={"pnc": "08/123456a"}))
    with world.session() as s:
        found = service.subject_candidates(s, new, agency_id=world.agencies["police"],
                                   threshold=THRESHOLD)
    assert [c.case.case_id for c in found] == [earlier]
    assert ("identifier", "pnc same") in [(r.factor, r.detail) for r in found[0].reasons]


def test_decisions_keep_both_audit_chains_whole(world: World) -> None:
    earlier = _case_with(world, HASSAN)
    new = _case_with(world, ALHASAN)
    police = world.agencies["police"]
    with world.session() as s:
        service.decide_candidate(s, new, earlier, "linked", agency_id=police, threshold=THRESHOLD,
                       now=world.tick())
    with world.session() as s:
        service.unlink_subjects(s, earlier, new, agency_id=police, now=world.tick())
    with world.session() as s:
        service.decide_candidate(s, new, earlier, "rejected", agency_id=police, threshold=THRESHOLD,
                       now=world.tick())
        assert verify(s) == []
        assert service.prior_contacts(s, new, agency_id=police) == []
        kinds = [e.kind for e in cases_service.history(s, new, agency_id=police)]
    assert kinds[-3:] == ["subject_linked", "subject_unlinked", "subject_rejected"]


def _delete_case(world: World, case_id: int) -> None:
    """What a retention job does: the case and every row that hangs on it."""
    execute(world.engine, "DELETE FROM delivery_attempts WHERE notification_id IN "
            "(SELECT id FROM notifications WHERE case_id = :c)", c=case_id)
    for table in ("notifications", "escalations", "timers", "case_events",
                  "case_assignments"):
        execute(world.engine, f"DELETE FROM {table} WHERE case_id = :c", c=case_id)
    execute(world.engine, "DELETE FROM cases WHERE id = :c", c=case_id)


def test_a_subject_no_case_names_is_purged_with_its_names_and_keys(world: World) -> None:
    gone = _case_with(world, HASSAN)
    kept = _case_with(world, ALHASAN)
    with world.session() as s:
        service.decide_candidate(s, kept, gone, "linked", agency_id=world.agencies["police"],
                       threshold=THRESHOLD, now=world.tick())
    with world.session() as s:
        assert service.purge_orphan_subjects(s, world.tick()) == 0
    _delete_case(world, gone)
    with world.session() as s:
        assert service.purge_orphan_subjects(s, world.tick()) == 1
        assert s.scalar(select(func.count()).select_from(Subject)) == 1
        left = s.scalar(select(func.count(func.distinct(SubjectKey.subject_id))))
        assert left == 1
        assert s.scalars(select(SubjectName.family)).all() == ["Alhasan"]
        assert service.prior_contacts(s, kept, agency_id=world.agencies["police"]) == []
    assert _candidates(world, kept) == []
