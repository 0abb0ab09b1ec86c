"""The Celery application, built from :class:`Settings`.

Deadlines never ride on Celery ETAs or countdowns: they live in the database and beat only
runs the tick (and the outbox sweep) every ``tick_interval_seconds``. Those are polls that
claim rows, so a second beat or any number of workers is harmless. Each worker process
builds its own database engine after the fork (pitfall 13).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Celery, signals
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine import Deliverer, make_engine, session_factory, tracing
from engine.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
QUEUE = "referral"


class Runtime:
    """Per-process resources of the worker: the engine, sessions and channels."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._factory: sessionmaker[Session] | None = None
        self._deliverer: Deliverer | None = None

    def session_factory(self) -> sessionmaker[Session]:
        # Built on first use in the process that uses it: a solo or threaded pool never
        # sends worker_process_init, and a prefork child must never reuse its parent's.
        if self._factory is None:
            self._engine = make_engine(self.settings.database_url)
            self._factory = session_factory(self._engine)
        return self._factory

    def deliverer(self) -> Deliverer:
        if self._deliverer is None:
            self._deliverer = Deliverer.from_settings(self.settings)
        return self._deliverer

    def reset(self) -> None:
        """Forget inherited resources without closing the parent's sockets."""
        if self._engine is not None:
            self._engine.dispose(close=False)
        self._engine, self._factory, self._deliverer = None, None, None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._deliverer is not None:
            self._deliverer.close()
        self._engine, self._factory, self._deliverer = None, None, None


class ReferralCelery(Celery):
    runtime: Runtime


def create_app(settings: Settings | None = None) -> ReferralCelery:
    settings = settings or Settings()
    app = ReferralCelery("referral", set_as_current=True)
    app.runtime = Runtime(settings)
    interval = timedelta(seconds=settings.tick_interval_seconds)
    # A beat message not consumed within one interval is superseded by the next one, so a
    # backlog after downtime never becomes a storm of ticks (pitfall 1).
    poll_options: dict[str, Any] = {"expires": max(1.0, settings.tick_interval_seconds * 2)}
    app.conf.update(
        broker_url=settings.broker_url or DEFAULT_BROKER,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE,
        timezone="UTC",
        enable_utc=True,
        include=["workers.tasks"],
        beat_schedule_filename=settings.beat_schedule_file(),
        beat_schedule={
            "referral-tick": {
                "task": "referral.tick",
                "schedule": interval,
                "options": poll_options,
            },
            "referral-sweep": {
                "task": "referral.sweep",
                "schedule": interval,
                "options": poll_options,
            },
        },
    )
    # Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; on, each message carries its trace
    # context, so a tick, the deliveries it enqueues and their webhooks are one trace.
    if tracing.setup("referral-worker"):
        tracing.instrument_celery()
    runtime = app.runtime

    def _after_fork(**_: Any) -> None:
        runtime.reset()

    def _shutdown(**_: Any) -> None:
        runtime.close()

    signals.worker_process_init.connect(_after_fork, weak=False)
    signals.worker_process_shutdown.connect(_shutdown, weak=False)
    return app
