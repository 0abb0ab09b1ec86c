"""What every CLI command shares: settings, the database, output and error handling."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from engine import (
    check_migrated,
    database_label,
    make_engine,
    session_factory,
    sqlite_file,
    to_jsonable,
)
from engine.errors import DatabaseNotMigrated, DefinitionError, ReferralError
from engine.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

# markup=False: names, data and titles come from users, and "[/]" in an agency name must
# print as itself, never be read as rich markup (a crash there once lost a token).
# Styled output is built from rich Text objects instead.
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def load_settings() -> Settings:
    return Settings()


def _refuse_missing_sqlite_file(url: str) -> None:
    """SQLite would create an empty file wherever the command runs: name it and stop.

    Without this a command run from another directory silently made a second database.
    """
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise DatabaseNotMigrated(
            f"no database at {path}: run `referral db upgrade` (or `make run`) to create it, "
            "or point REFERRAL_DATABASE_URL at the one you mean (the default "
            "./referral.db is relative to the current directory)",
            database=str(path),
        )


@contextmanager
def database(settings: Settings, *, migrated: bool = True) -> Iterator[sessionmaker[Session]]:
    """A session factory on the configured database, refusing an unmigrated one."""
    if migrated:
        _refuse_missing_sqlite_file(settings.database_url)
    engine: Engine = make_engine(settings.database_url)
    try:
        if migrated:
            check_migrated(engine)
        yield session_factory(engine)
    finally:
        engine.dispose()


def print_json(value: Any) -> None:
    """``value`` (views, or plain JSON values) as one line of the JSON the API writes."""
    sys.stdout.write(json.dumps(to_jsonable(value)) + "\n")


def _json_error(code: str, message: str, details: dict[str, Any]) -> None:
    # The API's error shape, so one parser reads both.
    print_json({"error": {"code": code, "message": message, "details": details}})


def _database_named() -> str:
    try:
        return database_label(load_settings().database_url)
    except Exception:
        # The settings themselves are broken: the reason is printed anyway.
        return "(unreadable REFERRAL_DATABASE_URL)"


def _report(exc: Exception, as_json: bool) -> None:
    """One clear message for an expected failure: a JSON object under --json, else text."""
    if isinstance(exc, SQLAlchemyError):
        # An unreachable or broken database is an operator's problem to read, not a
        # traceback; hide_parameters keeps row values (case data) out of the message.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        name = _database_named()
        if as_json:
            _json_error("database_error", f"database {name}: {reason}", {"database": name})
        else:
            err.print(f"error: database {name}: {reason}")
        return
    assert isinstance(exc, ReferralError)
    if as_json:
        _json_error(exc.code, exc.message, exc.details)
    elif isinstance(exc, DefinitionError):
        for problem in exc.problems:
            err.print(problem.format())
    else:
        err.print(f"error: {exc.message}")


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn engine errors into a clear message and exit status 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (ReferralError, SQLAlchemyError) as exc:
            _report(exc, kwargs.get("json") is True)
            raise typer.Exit(1) from None

    return wrapper

