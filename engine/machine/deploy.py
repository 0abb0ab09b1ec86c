"""Deployed workflow versions: stored once, immutable, compiled on demand and cached.

A (workflow, version) is fixed at its first deploy: re-deploying identical content is a
no-op and different content is refused. Cases point at the version row they were opened
on, so a new version never changes a running case.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Annotated

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.definitions.loader import load_definition
from engine.definitions.model import Definition
from engine.errors import DeployConflict, NotFound
from engine.machine.compiled import CompiledWorkflow, compile_definition
from engine.store.tables import Case, WorkflowVersion

_CACHE_SIZE = 256
_cache: dict[str, CompiledWorkflow] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class DeployResult:
    """The version a deploy stored, or found already stored with the same content."""

    created: Annotated[
        bool, Field(description="False when identical content was already deployed.")
    ]
    workflow: str
    version: int
    title: str
    content_hash: Annotated[str, Field(description="SHA-256 of the YAML text (hex).")]

    @classmethod
    def of(cls, defn: Definition, *, created: bool) -> DeployResult:
        return cls(created, defn.workflow, defn.version, defn.title, defn.content_hash)


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """One deployed workflow version."""

    workflow: str
    version: int
    title: str
    content_hash: Annotated[str, Field(description="SHA-256 of the YAML text (hex).")]
    deployed_at: datetime


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _remember(key: str, compiled: CompiledWorkflow) -> CompiledWorkflow:
    with _cache_lock:
        if len(_cache) >= _CACHE_SIZE:
            # Oldest first: dicts keep insertion order.
            _cache.pop(next(iter(_cache)))
        _cache[key] = compiled
    return compiled


def _compile_text(text: str, path: str) -> CompiledWorkflow:
    key = content_hash(text)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    return _remember(key, compile_definition(load_definition(text, path)))


def deploy(session: Session, text: str, path: str, *, now: datetime) -> DeployResult:
    """Store a definition version; DefinitionError if it does not load, DeployConflict if
    the same (workflow, version) is already deployed with other content."""
    compiled = _compile_text(text, path)
    defn = compiled.definition
    digest = content_hash(text)
    existing = _version_row(session, defn.workflow, defn.version)
    if existing is None:
        row = WorkflowVersion(
            workflow=defn.workflow,
            version=defn.version,
            title=defn.title[:200],
            source=text,
            content_hash=digest,
            deployed_at=now,
        )
        try:
            # A savepoint, so a concurrent deploy of the same version loses cleanly.
            with session.begin_nested():
                session.add(row)
            return DeployResult.of(defn, created=True)
        except IntegrityError:
            existing = _version_row(session, defn.workflow, defn.version)
            if existing is None:
                raise
    if existing.content_hash != digest:
        raise DeployConflict(
            f"{defn.workflow} version {defn.version} is already deployed with different "
            "content; give the changed definition a new version number",
            workflow=defn.workflow,
            version=defn.version,
        )
    return DeployResult.of(defn, created=False)


def _version_row(session: Session, workflow: str, version: int) -> WorkflowVersion | None:
    return session.scalar(
        select(WorkflowVersion).where(
            WorkflowVersion.workflow == workflow, WorkflowVersion.version == version
        )
    )


def compiled_by_id(session: Session, row_id: int) -> CompiledWorkflow:
    """The compiled machine of the workflow_versions row ``row_id``."""
    digest, workflow, version = session.execute(
        select(
            WorkflowVersion.content_hash, WorkflowVersion.workflow, WorkflowVersion.version
        ).where(WorkflowVersion.id == row_id)
    ).one()
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None:
        return hit
    source = session.scalar(select(WorkflowVersion.source).where(WorkflowVersion.id == row_id))
    assert source is not None
    return _remember(digest, compile_definition(load_definition(source, f"{workflow}@v{version}")))


def compiled_by_hash(session: Session, row_id: int, digest: str) -> CompiledWorkflow:
    """The compiled machine of version row ``row_id`` whose content hash ``digest`` the
    caller read with the case: no statement at all once compiled (the cache is keyed by
    content, so it holds across databases and wiped-and-reused row ids)."""
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None:
        return hit
    return compiled_by_id(session, row_id)


def version_id(session: Session, workflow: str, version: int | None = None) -> int:
    """The id of a deployed version (the latest when ``version`` is None), or NotFound."""
    query = select(WorkflowVersion.id).where(WorkflowVersion.workflow == workflow)
    if version is None:
        latest = (
            select(func.max(WorkflowVersion.version))
            .where(WorkflowVersion.workflow == workflow)
            .scalar_subquery()
        )
        query = query.where(WorkflowVersion.version == latest)
    else:
        query = query.where(WorkflowVersion.version == version)
    found = session.scalar(query)
    if found is None:
        which = f"{workflow} version {version}" if version is not None else workflow
        raise NotFound(f"workflow {which} is not deployed", workflow=workflow, version=version)
    return found


def compiled(session: Session, workflow: str, version: int | None = None) -> CompiledWorkflow:
    """The compiled machine of a deployed version (the latest when ``version`` is None)."""
    return compiled_by_id(session, version_id(session, workflow, version))


def compiled_for_case(session: Session, case: Case) -> CompiledWorkflow:
    """The machine of the version the case was opened on (cases stay pinned)."""
    return compiled_by_id(session, case.workflow_version_id)


def list_workflows(session: Session) -> list[WorkflowSummary]:
    rows = session.execute(
        select(
            WorkflowVersion.workflow,
            WorkflowVersion.version,
            WorkflowVersion.title,
            WorkflowVersion.content_hash,
            WorkflowVersion.deployed_at,
        ).order_by(WorkflowVersion.workflow, WorkflowVersion.version)
    )
    return [WorkflowSummary(*row) for row in rows]


def deploy_shipped(session: Session, now: datetime) -> list[DeployResult]:
    """Deploy every ``*.yaml`` shipped directly in the ``workflows`` package."""
    results: list[DeployResult] = []
    folder = resources.files("workflows")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".yaml"):
            text = entry.read_text(encoding="utf-8")
            # The file's real location, so a message about an edited shipped workflow
            # names the file to fix (its problems are path:line:col already).
            try:
                results.append(deploy(session, text, str(entry), now=now))
            except DeployConflict as exc:
                raise DeployConflict(
                    f"{entry}: {exc.message} (or restore the file as shipped)", **exc.details
                ) from None
    return results
