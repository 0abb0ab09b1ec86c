"""``referral tick``, ``referral worker`` and ``referral ack``: timers from the command line."""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime
from types import FrameType

import typer

from engine import EmbeddedWorker, Pass, acknowledge, agency_by_name
from engine.cli.common import database, err, handle_errors, load_settings, out, print_json
from engine.cli.render import plural
from engine.cli.usage import PlainCommand
from engine.clock import utcnow
from engine.errors import InvalidInput

JSON_OPT = typer.Option(False, "--json", help="Print JSON.")


def parse_when(text: str | None) -> datetime:
    """An ISO 8601 time (UTC when no offset is given), or now."""
    if text is None:
        return utcnow()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--now must be an ISO 8601 time such as 2026-03-02T09:00:00Z, got {text!r}"
        ) from None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _print_pass(done: Pass) -> None:
    fired = [f for f in done.tick.fired if f.kind != "cancelled"]
    if not fired:
        out.print(f"nothing due at {done.tick.now.isoformat()}")
    for f in fired:
        what = {
            "reminder": f"reminder to {plural(len(f.agency_ids), 'agency', 'agencies')}",
            "escalation": f"escalation step {f.step} to "
            f"{plural(len(f.agency_ids), 'agency', 'agencies')}",
            "fire": f"fired {f.trigger}" + (f" (rejected: {f.rejected})" if f.rejected else ""),
            "ladder": "ladder started",
        }.get(f.kind, f.kind)
        ack = f" [escalation {f.escalation_id}]" if f.escalation_id is not None else ""
        nxt = f"; next step due {f.next_due_at.isoformat()}" if f.next_due_at else ""
        out.print(f"case {f.case_id} timer {f.timer}: {what}{ack}{nxt}")
    for failed in done.tick.errors:
        err.print(f"timer {failed.timer_id} failed: {failed.error}")
    d = done.delivery
    if d.claimed:
        out.print(
            f"delivered {len(d.delivered)}, retrying {len(d.retried)}, "
            f"dead-lettered {len(d.dead)} notification(s)"
        )


def tick_command(
    now: str | None = typer.Option(None, "--now", help="Run as if it were this ISO time."),
    json: bool = JSON_OPT,
) -> None:
    """Fire the timers due now (or at --now) and deliver what is due; print what happened."""
    when = parse_when(now)
    settings = load_settings()
    with database(settings) as factory:
        worker = EmbeddedWorker(factory, settings)
        try:
            done = worker.run_once(when)
        finally:
            worker.deliverer.close()
    if json:
        print_json(done)
    else:
        _print_pass(done)
    if done.tick.errors:
        raise typer.Exit(1)


def worker_command(
    celery: bool = typer.Option(False, "--celery", help="Run the Celery worker with beat."),
    concurrency: int = typer.Option(2, "--concurrency", min=1, help="Celery pool size."),
) -> None:
    """Run the tick and delivery loop: in-process, or as `celery -A workers worker -B`."""
    settings = load_settings()
    if celery:
        if not settings.broker_url:
            raise InvalidInput("--celery needs a broker: set REFERRAL_BROKER_URL (redis://...)")
        # This interpreter's celery, so the worker runs the same installed engine.
        argv = [sys.executable, "-m", "celery", "-A", "workers", "worker", "-B",
                "--loglevel", "INFO", "--concurrency", str(concurrency)]
        os.execv(argv[0], argv)
    with database(settings) as factory:
        worker = EmbeddedWorker(factory, settings)

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            worker.stopped.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        out.print(
            f"worker running in-process every {settings.tick_interval_seconds}s; Ctrl-C stops"
        )
        try:
            worker.run()
        finally:
            worker.deliverer.close()
    out.print("worker stopped")


def ack_command(
    escalation_id: int = typer.Argument(..., help="The escalation id from the notification."),
    agency: str = typer.Option(..., "--agency", help="The acknowledging agency (by name)."),
    json: bool = JSON_OPT,
) -> None:
    """Acknowledge an escalation: records who did and stops its ladder."""
    with database(load_settings()) as factory, factory() as session:
        acting = agency_by_name(session, agency)
        result = acknowledge(session, escalation_id, agency_id=acting.id, now=utcnow())
        session.commit()
    if json:
        print_json(result)
        return
    stopped = (
        f"; stopped step(s) {', '.join(map(str, result.stopped_steps))}"
        if result.stopped_steps
        else ""
    )
    out.print(
        f"escalation {result.escalation_id} (case {result.case_id}, timer {result.timer}, "
        f"step {result.step}) acknowledged by {agency}{stopped}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("tick", cls=PlainCommand)(handle_errors(tick_command))
    app.command("worker", cls=PlainCommand)(handle_errors(worker_command))
    app.command("ack", cls=PlainCommand)(handle_errors(ack_command))
