"""The embedded worker: the tick and delivery loop, in-process, for SQLite and small sites.

The same engine functions the Celery tasks call, run one after another every
``tick_interval_seconds`` until stopped. ``run_once(now)`` is one pass, for tests and the
``referral tick`` command.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from engine import clock, tracing
from engine.notify.delivery import Deliverer, DeliveryResult
from engine.process_metrics import ProcessMetrics
from engine.settings import Settings
from engine.timers import tick as timers

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass of the worker did."""

    tick: timers.TickResult
    delivery: DeliveryResult


class EmbeddedWorker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        deliverer: Deliverer | None = None,
        wall_clock: Callable[[], datetime] = clock.utcnow,
        metrics: ProcessMetrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.session_factory = session_factory
        self.settings = settings
        self.deliverer = deliverer or Deliverer.from_settings(settings)
        self.wall_clock = wall_clock
        self.stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime) -> Pass:
        """Fire what is due at ``now``, then deliver what is due (alerts included)."""
        # One trace per pass: the tick's batches, their outbox rows and the deliveries.
        with tracing.span("worker.pass"):
            return self._pass(now)

    def _pass(self, now: datetime) -> Pass:
        started = clock.monotonic()
        tick = timers.tick(
            self.session_factory,
            now=now,
            batch_size=self.settings.tick_batch_size,
            lease_seconds=self.settings.claim_lease_seconds,
        )
        if self.metrics is not None:
            self.metrics.observe_tick(clock.monotonic() - started)
        delivery = self.deliverer.deliver_due(self.session_factory, now=now)
        if delivery.alerts:
            # Dead-letter alerts written by this pass go out in the same pass.
            delivery.merge(self.deliverer.deliver_due(self.session_factory, now=now))
        return Pass(tick, delivery)

    def run(self) -> None:
        """Loop until :meth:`stop`; an error in one pass is logged and the loop goes on."""
        interval = self.settings.tick_interval_seconds
        while not self.stopped.is_set():
            try:
                done = self.run_once(self.wall_clock())
                if done.tick.fired or done.delivery.claimed:
                    logger.info(
                        "fired %d timers, delivered %d, retrying %d, dead %d",
                        len(done.tick.fired),
                        len(done.delivery.delivered),
                        len(done.delivery.retried),
                        len(done.delivery.dead),
                    )
            except Exception:
                logger.exception("worker pass failed; trying again in %ss", interval)
            self.stopped.wait(interval)

    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread (the API server's in-process worker)."""
        self.stopped.clear()
        self._thread = threading.Thread(target=self.run, name="referral-worker", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 30.0) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.deliverer.close()
