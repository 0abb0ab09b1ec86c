"""Deploying versions: idempotent, immutable, and cases pinned to their version."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import pytest
from casekit import EXAMPLE, T0, World, dump, make_world
from sqlalchemy import func, select

from engine.errors import DefinitionError, DeployConflict, NotFound
from engine.machine.deploy import compiled, deploy, deploy_shipped, list_workflows
from engine.store.db import make_engine, session_factory
from engine.store.tables import Timer, WorkflowVersion

# Version 2 gives the police ten business days to screen instead of five.
V2 = EXAMPLE.replace("version: 1", "version: 2", 1).replace(
    "after: 5 business days", "after: 10 business days", 1
)


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    w = make_world(db_url)
    yield w
    w.dispose()


def test_identical_redeploy_is_a_no_op(world: World) -> None:
    before = dump(world.engine)
    with world.session() as s:
        result = deploy(s, EXAMPLE, "again.yaml", now=T0)
    assert not result.created
    assert result.workflow == "community_panel"
    assert dump(world.engine) == before


def test_same_version_with_other_content_is_refused(world: World) -> None:
    changed = EXAMPLE.replace("after: 5 business days", "after: 6 business days", 1)
    before = dump(world.engine)
    with world.factory() as s, pytest.raises(DeployConflict, match="version 1"):
        deploy(s, changed, "changed.yaml", now=T0)
    assert dump(world.engine) == before


def test_an_invalid_definition_is_not_stored(world: World) -> None:
    before = dump(world.engine)
    with world.factory() as s, pytest.raises(DefinitionError):
        deploy(
            s,
            EXAMPLE.replace("version: 1", "version: 3").replace("to: review", "to: revue"),
            "bad.yaml",
            now=T0,
        )
    assert dump(world.engine) == before


def test_versions_and_listing(world: World) -> None:
    with world.session() as s:
        assert deploy(s, V2, "v2.yaml", now=T0).created
    with world.factory() as s:
        assert compiled(s, "community_panel").definition.version == 2
        assert compiled(s, "community_panel", 1).definition.version == 1
        with pytest.raises(NotFound):
            compiled(s, "community_panel", 3)
        with pytest.raises(NotFound):
            compiled(s, "nothing_here")
        listed = [(w.workflow, w.version) for w in list_workflows(s)]
    assert listed == [("community_panel", 1), ("community_panel", 2)]


def test_cases_stay_pinned_across_a_redeploy(world: World) -> None:
    old = world.open().id
    with world.session() as s:
        deploy(s, V2, "v2.yaml", now=T0)
    new = world.open()
    assert new.workflow_version == 2
    assert world.view(old).workflow_version == 1

    world.clock = T0
    world.fire(old, "accept", "coordinator")
    world.clock = T0
    world.fire(new.id, "accept", "coordinator")
    with world.factory() as s:
        rows = s.execute(
            select(Timer.case_id, Timer.due_at).where(Timer.name == "screening_deadline")
        )
        due = {case_id: at for case_id, at in rows}
    assert (due[new.id] - due[old]).days == 7  # five more business days, one weekend more
    # An explicit older version still opens.
    assert world.open(version=1).workflow_version == 1


def test_deploy_shipped_deploys_every_yaml_in_the_package(db_url: str) -> None:
    shipped = sorted(
        e.name for e in resources.files("workflows").iterdir() if e.name.endswith(".yaml")
    )
    engine = make_engine(db_url)
    factory = session_factory(engine)
    with factory() as s:
        results = deploy_shipped(s, T0)
        s.commit()
    assert len(results) == len(shipped) > 0
    assert all(r.created for r in results)
    with factory() as s:
        again = deploy_shipped(s, T0)
        s.commit()
        count = s.scalar(select(func.count()).select_from(WorkflowVersion))
    engine.dispose()
    assert not any(r.created for r in again)
    assert count == len(shipped)
