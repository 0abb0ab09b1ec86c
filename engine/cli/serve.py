"""``referral serve``: one command for a running engine.

Migrates the database on first start (and always on SQLite, the single-machine default),
deploys the shipped workflows, runs the timer and delivery worker in-process when no
broker is configured, and serves the HTTP API with uvicorn.
"""

from __future__ import annotations

import logging
import secrets

import typer
from pydantic import SecretStr
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from engine.cli.common import err, handle_errors, load_settings
from engine.clock import utcnow
from engine.errors import ConfigError
from engine.settings import Settings
from engine.store.db import check_migrated, current_revision, make_engine, session_factory, upgrade


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
            f"cannot use the database{_shown(settings.database_url)}: {reason} "
            "(check REFERRAL_DATABASE_URL)"
        ) from None


def _shown(url: str) -> str:
    """`` URL`` with any password masked, for messages ("" if it does not parse)."""
    try:
        return " " + make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return ""


def deploy_shipped_workflows(engine: Engine) -> int:
    from engine.machine.deploy import deploy_shipped

    with session_factory(engine)() as session:
        results = deploy_shipped(session, utcnow())
        session.commit()
    return sum(1 for r in results if r.created)


def show_engine_logs() -> None:
    """The worker's and the log channel's INFO lines on stderr, beside uvicorn's own.

    Without this a newcomer running the default (log channel, no path set) would never
    see a reminder arrive: Python drops INFO records when nothing is configured.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    for name in ("engine", "referral"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


def run_server(settings: Settings, *, host: str, port: int) -> None:
    import uvicorn

    from api.app import create_app
    from engine.embedded import EmbeddedWorker
    from engine.process_metrics import ProcessMetrics

    # An empty REFERRAL_ADMIN_TOKEN= would lock the administrator out: treat it as unset.
    if settings.admin_token is None or not settings.admin_token.get_secret_value():
        token = secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"admin_token": SecretStr(token)})
        err.print(
            f"admin token for this run: {token}\n"
            "  (set REFERRAL_ADMIN_TOKEN to choose a lasting one)",
            markup=False,
        )
    show_engine_logs()
    engine = open_database(settings)
    # One registry for the API and the in-process worker, so /metrics shows tick times.
    measured = ProcessMetrics()
    worker: EmbeddedWorker | None = None
    try:
        if settings.deploy_shipped_workflows:
            created = deploy_shipped_workflows(engine)
            if created:
                err.print(f"deployed {created} shipped workflow version(s)", markup=False)
        if settings.broker_url is None:
            worker = EmbeddedWorker(session_factory(engine), settings, metrics=measured)
            worker.start()
            err.print("timer worker: in-process (no REFERRAL_BROKER_URL)", markup=False)
        else:
            err.print("timer worker: Celery (run `referral worker --celery`)", markup=False)
        uvicorn.run(create_app(settings, engine=engine, process_metrics=measured), host=host,
                    port=port, log_level="info")
    finally:
        if worker is not None:
            worker.stop()
        engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
        port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    ) -> None:
        """Serve the HTTP API (and the in-process worker when no broker is configured)."""
        run_server(load_settings(), host=host, port=port)
