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

from engine.errors import DefinitionError, ReferralError
from engine.settings import Settings
from engine.store.db import check_migrated, make_engine, session_factory
from engine.views_json import to_jsonable

P = ParamSpec("P")
R = TypeVar("R")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def load_settings() -> Settings:
    return Settings()


@contextmanager
def database(settings: Settings, *, migrated: bool = True) -> Iterator[sessionmaker[Session]]:
    """A session factory on the configured database, refusing an unmigrated one."""
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


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn engine errors into a clear message and exit status 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DefinitionError as exc:
            for problem in exc.problems:
                err.print(problem.format(), markup=False)
            raise typer.Exit(1) from None
        except ReferralError as exc:
            err.print(f"error: {exc.message}", markup=False)
            raise typer.Exit(1) from None
        except SQLAlchemyError as exc:
            # An unreachable or broken database is an operator's problem to read, not a
            # traceback; hide_parameters keeps row values (case data) out of the message.
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            err.print(f"error: database: {reason}", markup=False)
            raise typer.Exit(1) from None

    return wrapper
