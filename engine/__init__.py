"""referral-engine: a workflow engine for multi-agency referral and exit work.

This module is the engine's public face: what ``api/``, ``workers/`` and the CLI use,
importable as ``from engine import open_case``. Names load their module on first use,
so a command pays only for what it touches. Where things live:

- ``engine.definitions``: the YAML language: source with line marks, schema, checks,
  CEL guards, durations, the loader and diagrams.
- ``engine.machine``: a deployed version compiled once to a ``transitions`` machine.
- ``engine.cases``: the one write path for cases (open, fire, assign) and their reads:
  field data, access rules, the audit chain, milestones, views, the work queue.
- ``engine.timers``: timer rows, the tick and its batches, escalation ladders,
  acknowledgements and business calendars.
- ``engine.notify``: the outbox and delivery through webhook, email and log channels.
- ``engine.store``: tables, migrations, engines and sessions, the case row, the one
  writer per table, and the fast path (the only code that touches a DB-API cursor).
- ``engine.simulate``: scripted cases on a virtual clock.
- ``engine.embedded``: the in-process worker (``workers/`` is the Celery one).
- ``engine.agencies``, ``engine.metrics``, ``engine.settings``, ``engine.clock`` (the only
  reader of the wall clock) and ``engine.errors`` (one exception root).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.version import __version__ as __version__

_FACE = {
    "engine.cases.service": (
        "assign", "definition_for_actor", "definition_of", "fire", "history", "open_case", "view",
    ),
    "engine.cases.views": (
        "AllowedView", "AssignmentView", "CaseView", "EventView", "MilestoneView", "TimerView",
    ),
    "engine.cases.queue": ("QueueItem", "QueuePage", "work_queue"),
    "engine.cases.audit": ("AuditFault", "verify"),
    "engine.timers.escalations": ("AckResult", "acknowledge"),
    "engine.timers.tick": ("tick", "next_due_at", "TickResult"),
    "engine.notify.delivery": ("Deliverer", "DeliveryResult"),
    "engine.notify.sweep": ("mark_enqueued", "never_enqueued", "to_enqueue"),
    "engine.embedded": ("EmbeddedWorker", "Pass"),
    "engine.machine.deploy": (
        "DeployResult", "WorkflowSummary", "compiled", "deploy", "deploy_shipped",
        "list_workflows",
    ),
    "engine.definitions.model": ("SYSTEM_ROLE", "Definition"),
    "engine.definitions.diagram": ("to_dot", "to_mermaid"),
    "engine.views_json": ("to_jsonable",),
    "engine.subjects.service": (
        "attach_at_open", "attach_subject", "decide_candidate", "prior_contacts",
        "purge_orphan_subjects", "show_subject", "subject_candidates", "unlink_subjects",
    ),
    "engine.subjects.details": ("SubjectDetails", "subject_details"),
    "engine.subjects.views": ("CandidateView", "OtherCase"),
    "engine.agencies": ("add_agency", "agency_by_name", "authenticate", "list_agencies"),
    "engine.store.db": (
        "check_migrated", "current_revision", "database_label", "make_engine",
        "session_factory", "sqlite_file", "upgrade",
    ),
    "engine.metrics": ("CONTENT_TYPE", "render"),
    "engine.cases.data": ("parse_assignments",),
    "engine.definitions.loader": ("load_definition", "load_path"),
    "engine.process_metrics": ("ProcessMetrics",),
    "engine.notify.operations": (
        "MAX_REPLAY", "DeadLetter", "dead_letters", "enable_webhook", "operation_log", "replay",
        "send_test",
    ),
    "engine.notify.acklink": ("AckGrant", "make_token", "read_token"),
    "engine.notify.events": ("WEBHOOK_MODELS", "WebhookEvent"),
    "engine.settings": ("Settings",),
}
_HOME = {name: module for module, names in _FACE.items() for name in names}
__all__ = [
    "CONTENT_TYPE",
    "MAX_REPLAY",
    "SYSTEM_ROLE",
    "WEBHOOK_MODELS",
    "AckGrant",
    "AckResult",
    "AllowedView",
    "AssignmentView",
    "AuditFault",
    "CandidateView",
    "CaseView",
    "DeadLetter",
    "Definition",
    "Deliverer",
    "DeliveryResult",
    "DeployResult",
    "EmbeddedWorker",
    "EventView",
    "MilestoneView",
    "OtherCase",
    "Pass",
    "ProcessMetrics",
    "QueueItem",
    "QueuePage",
    "Settings",
    "SubjectDetails",
    "TickResult",
    "TimerView",
    "WebhookEvent",
    "WorkflowSummary",
    "acknowledge",
    "add_agency",
    "agency_by_name",
    "assign",
    "attach_at_open",
    "attach_subject",
    "authenticate",
    "check_migrated",
    "compiled",
    "current_revision",
    "database_label",
    "dead_letters",
    "decide_candidate",
    "definition_for_actor",
    "definition_of",
    "deploy",
    "deploy_shipped",
    "enable_webhook",
    "fire",
    "history",
    "list_agencies",
    "list_workflows",
    "load_definition",
    "load_path",
    "make_engine",
    "make_token",
    "mark_enqueued",
    "never_enqueued",
    "next_due_at",
    "open_case",
    "operation_log",
    "parse_assignments",
    "prior_contacts",
    "purge_orphan_subjects",
    "read_token",
    "render",
    "replay",
    "send_test",
    "session_factory",
    "show_subject",
    "sqlite_file",
    "subject_candidates",
    "subject_details",
    "tick",
    "to_dot",
    "to_enqueue",
    "to_jsonable",
    "to_mermaid",
    "unlink_subjects",
    "upgrade",
    "verify",
    "view",
    "work_queue",
]

if TYPE_CHECKING:
    from engine.agencies import add_agency, agency_by_name, authenticate, list_agencies
    from engine.cases.audit import AuditFault, verify
    from engine.cases.data import parse_assignments
    from engine.cases.queue import QueueItem, QueuePage, work_queue
    from engine.cases.service import (
        assign,
        definition_for_actor,
        definition_of,
        fire,
        history,
        open_case,
        view,
    )
    from engine.cases.views import (
        AllowedView,
        AssignmentView,
        CaseView,
        EventView,
        MilestoneView,
        TimerView,
    )
    from engine.definitions.diagram import to_dot, to_mermaid
    from engine.definitions.loader import load_definition, load_path
    from engine.definitions.model import SYSTEM_ROLE, Definition
    from engine.embedded import EmbeddedWorker, Pass
    from engine.machine.deploy import (
        DeployResult,
        WorkflowSummary,
        compiled,
        deploy,
        deploy_shipped,
        list_workflows,
    )
    from engine.metrics import CONTENT_TYPE, render
    from engine.notify.acklink import AckGrant, make_token, read_token
    from engine.notify.delivery import Deliverer, DeliveryResult
    from engine.notify.events import WEBHOOK_MODELS, WebhookEvent
    from engine.notify.operations import (
        MAX_REPLAY,
        DeadLetter,
        dead_letters,
        enable_webhook,
        operation_log,
        replay,
        send_test,
    )
    from engine.notify.sweep import mark_enqueued, never_enqueued, to_enqueue
    from engine.process_metrics import ProcessMetrics
    from engine.settings import Settings
    from engine.store.db import (
        check_migrated,
        current_revision,
        database_label,
        make_engine,
        session_factory,
        sqlite_file,
        upgrade,
    )
    from engine.subjects.details import SubjectDetails, subject_details
    from engine.subjects.service import (
        attach_at_open,
        attach_subject,
        decide_candidate,
        prior_contacts,
        purge_orphan_subjects,
        show_subject,
        subject_candidates,
        unlink_subjects,
    )
    from engine.subjects.views import CandidateView, OtherCase
    from engine.timers.escalations import AckResult, acknowledge
    from engine.timers.tick import TickResult, next_due_at, tick
    from engine.views_json import to_jsonable


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
