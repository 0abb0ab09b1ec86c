"""Figure 5, latency: from a timer's due moment to its webhook arriving, on real parts.

A real Celery worker with its beat (``celery -A workers worker -B``, a subprocess with its
own environment: a Redis database number of its own, the benchmark's temporary database, a
tick every ``INTERVAL`` seconds) fires reminders whose due moments are spread over a window
of wall-clock time; each reminder is a Standard Webhooks POST to a real HTTP receiver on
127.0.0.1 that verifies the signature and notes the arrival. Latency is arrival minus the
payload's ``due_at``; the figure is its p50 and p99.

The floor is the engine's own work on the same path without polling or a queue: timers of
the same kind, ticked and delivered in this process at their exact due moment.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from benchmarks import bulk
from benchmarks.raw import Raw
from benchmarks.report import Figure, measured, skipped
from benchmarks.world import Database, temporary_database
from engine import clock
from engine.notify.delivery import Deliverer
from engine.settings import Settings
from engine.timers import tick as timers

REDIS = ("127.0.0.1", 6379)
INTERVAL = 1.0
REPO = Path(__file__).resolve().parent.parent


def redis_missing() -> str | None:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return None
    except OSError:
        return f"no Redis on {REDIS[0]}:{REDIS[1]}"


@dataclass(frozen=True, slots=True)
class Arrival:
    at: datetime
    due_at: datetime
    webhook_id: str


class Receiver:
    """A threaded HTTP server verifying each webhook's signature and noting its arrival."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.arrivals: dict[str, Arrival] = {}
        self.rejected = 0
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # The default backlog of 5 refuses connections when both worker processes
            # deliver a batch at once, which would turn into retries and skew the figure.
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/agency"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        arrived = clock.utcnow()
        body = request.rfile.read(int(request.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in request.headers.items()}
        status = 200
        try:
            Webhook(self.secrets[request.path]).verify(body, headers)
            payload = json.loads(body)
        except (KeyError, WebhookVerificationError, ValueError):
            status = 401
        request.send_response(status)
        request.send_header("content-length", "0")
        request.end_headers()
        with self.changed:
            if status != 200:
                self.rejected += 1
            elif headers["webhook-id"] not in self.arrivals:
                # The body is Standard Webhooks' {"type", "timestamp", "data"}.
                due = datetime.fromisoformat(payload["data"]["due_at"])
                self.arrivals[headers["webhook-id"]] = Arrival(arrived, due, headers["webhook-id"])
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> list[Arrival]:
        deadline = clock.monotonic() + timeout
        with self.changed:
            while len(self.arrivals) < count and clock.monotonic() < deadline:
                self.changed.wait(deadline - clock.monotonic())
            return list(self.arrivals.values())

    def reset(self) -> None:
        with self.changed:
            self.arrivals.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _secrets(db: Database, receiver: Receiver) -> None:
    raw = Raw(db)
    try:
        for url, secret in raw.all(
            "SELECT webhook_url, webhook_secret FROM agencies WHERE webhook_url IS NOT NULL"
        ):
            receiver.secrets[url.removeprefix(receiver.url.removesuffix("/agency"))] = secret
        raw.rollback()
    finally:
        raw.close()


def _spread(db: Database, cases: Sequence[int], start: datetime, window: float) -> None:
    """Make the cases' reminders due one after another over ``window`` seconds."""
    raw = Raw(db)
    try:
        raw.begin()
        for i, case_id in enumerate(cases):
            due = start + timedelta(seconds=window * i / max(1, len(cases) - 1))
            raw.execute(
                "UPDATE timers SET due_at = %s WHERE case_id = %s AND status = %s",
                (raw.ts(due), case_id, "pending"),
            )
        raw.commit()
    finally:
        raw.close()


def _undelivered(db: Database) -> list[tuple[Any, ...]]:
    raw = Raw(db)
    try:
        rows = raw.all(
            "SELECT id, status, attempts, last_error FROM notifications "
            "WHERE status <> %s AND channel = %s ORDER BY id LIMIT 5",
            ("delivered", "webhook"),
        )
        raw.rollback()
        return [tuple(row) for row in rows]
    finally:
        raw.close()


def _percentiles(arrivals: list[Arrival], missing: int) -> tuple[float, float]:
    delays = sorted((a.at - a.due_at).total_seconds() for a in arrivals)
    delays += [float("inf")] * missing
    if not delays:
        return float("nan"), float("nan")

    def pick(q: float) -> float:
        return delays[min(len(delays) - 1, int(q * len(delays)))]

    return pick(0.50), pick(0.99)


def _floor(db: Database, cases: Sequence[int], receiver: Receiver, window: float) -> list[Arrival]:
    """Tick and deliver in this process at each due moment: no polling, no queue."""
    engine, factory = db.factory()
    deliverer = Deliverer.from_settings(Settings(database_url=db.url))
    start = clock.utcnow() + timedelta(seconds=1)
    _spread(db, cases, start, window)
    dues = [start + timedelta(seconds=window * i / max(1, len(cases) - 1))
            for i in range(len(cases))]
    pause = threading.Event()
    try:
        for due in dues:
            wait = (due - clock.utcnow()).total_seconds()
            if wait > 0:
                pause.wait(wait)
            now = clock.utcnow()
            result = timers.tick(factory, now=now, batch_size=500)
            if result.notification_ids:
                deliverer.deliver(factory, now=now, ids=result.notification_ids)
        return receiver.wait_for(len(cases), timeout=30)
    finally:
        deliverer.close()
        engine.dispose()


class CeleryWorker:
    """``celery -A workers worker -B`` in a process group of its own."""

    def __init__(self, db: Database, broker: str, folder: Path) -> None:
        self.log = folder / "celery-worker.log"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "REFERRAL_DATABASE_URL": db.url,
            "REFERRAL_BROKER_URL": broker,
            "REFERRAL_TICK_INTERVAL_SECONDS": str(INTERVAL),
            "REFERRAL_DEPLOY_SHIPPED_WORKFLOWS": "false",
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers", "worker", "-B",
                 "--loglevel", "INFO", "--pool", "prefork", "--concurrency", "2",
                 "--hostname", f"bench-{os.getpid()}@%h", "--without-gossip",
                 "--without-mingle", "--without-heartbeat",
                 "--schedule", str(folder / "celery-beat-schedule")],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = clock.monotonic() + timeout
        pause = threading.Event()
        while clock.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("celery worker exited:\n" + self.log.read_text()[-2000:])
            if b" ready." in self.log.read_bytes():
                return
            pause.wait(0.1)
        raise RuntimeError("celery worker not ready in time:\n" + self.log.read_text()[-2000:])

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def _redis_db() -> tuple[str, Any]:
    """A Redis database number nobody is using (checked empty), and a client on it."""
    import redis

    for number in random.Random().sample(range(1, 16), 15):
        client = redis.Redis(host=REDIS[0], port=REDIS[1], db=number)
        if client.dbsize() == 0:
            return f"redis://{REDIS[0]}:{REDIS[1]}/{number}", client
        client.close()
    raise RuntimeError("every Redis database 1..15 holds keys; none is free for the benchmark")


def run(kind: str, folder: Path, *, timers_count: int, window: float) -> list[Figure]:
    variant = f"{kind}, Celery worker -B on Redis, tick every {INTERVAL:g} s"
    absent = redis_missing()
    if absent:
        return [skipped("latency", variant, "s", absent)]
    receiver = Receiver()
    try:
        with temporary_database(kind, folder) as db:
            setup = bulk.prepare(db, agencies=4, webhook_url=receiver.url)
            _secrets(db, receiver)
            floor_cases = bulk.load_cases(db, setup, timers_count, opened_at=clock.utcnow())
            floor_arrivals = _floor(db, floor_cases, receiver, window)
            receiver.reset()
            cases = bulk.load_cases(db, setup, timers_count, opened_at=clock.utcnow())
            broker, client = _redis_db()
            worker = CeleryWorker(db, broker, folder)
            try:
                worker.wait_ready()
                _spread(db, cases, clock.utcnow() + timedelta(seconds=2), window)
                arrivals = receiver.wait_for(timers_count, timeout=window + 60)
                undelivered = _undelivered(db) if len(arrivals) < timers_count else []
            finally:
                log = worker.log.read_text(errors="replace")
                worker.stop()
                client.flushdb()
                client.close()
    finally:
        receiver.close()
    note = f"{timers_count} timers due over {window:g} s"
    missing = timers_count - len(arrivals)
    if missing:
        # Never arrived counts as infinitely late: the p99 shows it when it matters.
        note += (f"; {missing} webhooks never arrived ({receiver.rejected} refused by the "
                 f"receiver; undelivered rows: {undelivered})")
        print(f"latency: worker log tail:\n{log[-3000:]}", file=sys.stderr)
    p50, p99 = _percentiles(arrivals, missing)
    f50, f99 = _percentiles(floor_arrivals, timers_count - len(floor_arrivals))
    budget = INTERVAL + 1.0
    return [
        measured("latency", f"p50, {variant}", [p50], "s", [f50],
                 "the same timers ticked and delivered in-process at their due moment",
                 note=note),
        measured("latency", f"p99, {variant}", [p99], "s", [f99],
                 "the same timers ticked and delivered in-process at their due moment",
                 target=f"<= {budget:g} s (tick interval + 1 s)",
                 check=lambda v, f, r: v <= budget, note=note),
    ]
