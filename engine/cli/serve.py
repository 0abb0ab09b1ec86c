"""``referral serve``: one command for a running engine.

Migrates the database on first start (and always on SQLite, the single-machine default),
deploys the shipped workflows, runs the timer and delivery worker in-process when no
broker is configured, and serves the HTTP API with uvicorn.
"""

from __future__ import annotations

import errno
import logging
import secrets
import socket

import typer
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from engine import (
    check_migrated,
    current_revision,
    database_label,
    make_engine,
    session_factory,
    upgrade,
)
from engine.cli.common import err, handle_errors, load_settings
from engine.cli.usage import PlainCommand
from engine.clock import utcnow
from engine.errors import ConfigError
from engine.settings import Settings


def prepare_database(engine: Engine, settings: Settings) -> None:
    """Apply migrations where that is safe to do unasked, else insist they were applied.

    A fresh database (no migration yet) and SQLite are upgraded here; a shared server
    database that is behind is left to ``referral db upgrade``, run once by its operator.
    """
    if settings.database_url.startswith("sqlite") or current_revision(engine) is None:
        upgrade(engine)
    check_migrated(engine)


def open_database(settings: Settings) -> Engine:
    """The engine on a ready database, or a one-line ConfigError saying why not."""
    engine: Engine | None = None
    try:
        engine = make_engine(settings.database_url)
        prepare_database(engine, settings)
        return engine
    except SQLAlchemyError as exc:
        if engine is not None:
            engine.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ConfigError(
            f"cannot use the database {database_label(settings.database_url)}: {reason} "
            "(check REFERRAL_DATABASE_URL)"
        ) from None


def check_port_free(host: str, port: int) -> None:
    """Refuse a port already taken, before anything is printed or started.

    uvicorn would only find out after the database, the workflows and a fresh admin
    token, and then end with a bind traceback.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn binds: a port left in TIME_WAIT by the last run is free to use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
            raise ConfigError(
                f"port {port} on {host} is already in use (another `referral serve`?); "
                f"choose another: `make run PORT={port + 1}` or "
                f"`referral serve --port {port + 1}`",
                host=host,
                port=port,
            ) from None


def deploy_shipped_workflows(engine: Engine) -> tuple[int, int]:
    """(versions newly deployed, shipped files)."""
    from engine import deploy_shipped

    with session_factory(engine)() as session:
        results = deploy_shipped(session, utcnow())
        session.commit()
    return sum(1 for r in results if r.created), len(results)


def show_engine_logs() -> None:
    """The worker's INFO lines on stderr, beside uvicorn's own: Python drops INFO
    records when nothing is configured."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    for name in ("engine", "referral"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


def with_admin_token(settings: Settings) -> Settings:
    """The settings with an admin token, a fresh one printed when none is configured."""
    # An empty REFERRAL_ADMIN_TOKEN= would lock the administrator out: treat it as unset.
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        return settings
    token = secrets.token_urlsafe(24)
    err.print(
        f"admin token for this run: {token}\n"
        "  (set REFERRAL_ADMIN_TOKEN to choose a lasting one)"
    )
    return settings.model_copy(update={"admin_token": SecretStr(token)})


def run_server(settings: Settings, *, host: str, port: int) -> None:
    import uvicorn

    from api.app import create_app
    from engine import EmbeddedWorker, ProcessMetrics

    check_port_free(host, port)
    # First, so it is easy to find (tests and people read it from the first line).
    settings = with_admin_token(settings)
    err.print(f"preparing the database {database_label(settings.database_url)} ...")
    engine = open_database(settings)
    show_engine_logs()
    # One registry for the API and the in-process worker, so /metrics shows tick times.
    measured = ProcessMetrics()
    worker: EmbeddedWorker | None = None
    try:
        if settings.deploy_shipped_workflows:
            created, shipped = deploy_shipped_workflows(engine)
            err.print(f"shipped workflows: {created} of {shipped} newly deployed")
        if settings.broker_url is None:
            worker = EmbeddedWorker(session_factory(engine), settings, metrics=measured)
            worker.start()
            err.print("timer worker: in-process (no REFERRAL_BROKER_URL)")
        else:
            err.print("timer worker: Celery (run `referral worker --celery`)")
        err.print(f"serving the API on http://{host}:{port} (Ctrl-C stops)")
        uvicorn.run(create_app(settings, engine=engine, process_metrics=measured), host=host,
                    port=port, log_level="info")
    finally:
        if worker is not None:
            worker.stop()
        engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command(cls=PlainCommand)
    @handle_errors
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
        port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    ) -> None:
        """Serve the HTTP API (and the in-process worker when no broker is configured)."""
        run_server(load_settings(), host=host, port=port)
