"""What handlers receive: the runtime (settings, database, clock), a session, ``now``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.settings import Settings


@dataclass(frozen=True)
class Runtime:
    """Built once by the app factory; handlers reach it through ``request.app.state``."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime]


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def db_session(rt: Annotated[Runtime, Depends(runtime)]) -> Iterator[Session]:
    """One session per request; the handler commits, anything else rolls back."""
    with rt.sessions() as session:
        yield session


def current_time(rt: Annotated[Runtime, Depends(runtime)]) -> datetime:
    return rt.clock()


RuntimeDep = Annotated[Runtime, Depends(runtime)]
SessionDep = Annotated[Session, Depends(db_session)]
NowDep = Annotated[datetime, Depends(current_time)]
