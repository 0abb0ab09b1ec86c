"""Core statements compiled once per dialect and run straight on the DBAPI cursor.

The event path runs the same few statements on every event. Through
``Connection.execute`` each costs several times the database's own work (cache key,
execution context, result object); measured on SQLite, about 17 µs against 3 µs for the
same statement on the driver's cursor. A ``Prepared`` statement is a Core construct
compiled once per dialect, whose parameters and result values go through the column
types' own processors (so values are stored and read exactly as ``Connection.execute``
stores and reads them), run on the DBAPI cursor of the caller's ``Connection`` (a
``Cursor``, made once per transaction), inside its transaction. Driver errors come out
as SQLAlchemy's exceptions, a lost connection is invalidated as ``Connection.execute``
would, ``before_cursor_execute`` and ``after_cursor_execute`` listeners see each
statement (with a :class:`FastContext`), and SQL logging (``echo``) logs it.

This is the only module that touches a DB-API cursor; :func:`cursor_for` is the only way
to get one.

Only plain statements qualify: named ``bindparam``s and literal values, no expanding
``IN`` lists; anything else is refused when first compiled.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, UpdateBase
from sqlalchemy.sql.selectable import Select

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    positional: bool
    # (parameter name, bind processor) in the order the SQL takes them.
    binds: tuple[tuple[str, _Processor], ...]
    defaults: Mapping[str, Any]
    # (column index, result processor) for the columns that have one.
    results: tuple[tuple[int, Callable[[Any], Any]], ...]


def _compile(statement: Select[Any] | UpdateBase, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    if (
        compiled.literal_execute_params
        or compiled.post_compile_params
        or compiled.escaped_bind_names
    ):
        raise ValueError("a prepared statement takes plain named parameters only")
    by_name = {name: bind for bind, name in compiled.bind_names.items()}
    names = compiled.positiontup if dialect.positional else list(by_name)
    assert names is not None
    binds = tuple(
        (name, by_name[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names
    )
    defaults = {name: bind.effective_value for name, bind in by_name.items() if not bind.required}
    processors = (
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.exported_columns
    )
    results = tuple((i, proc) for i, proc in enumerate(processors) if proc is not None)
    return _Compiled(compiled.string, dialect.positional, binds, defaults, results)


class FastContext:
    """What cursor-event listeners get as ``context`` for a fast-path statement.

    Not an ``ExecutionContext`` (none is built, that is the point), but it carries the
    statement and accepts the attributes listeners hang on it between
    ``before_cursor_execute`` and ``after_cursor_execute`` (tracing spans, timers).
    """

    def __init__(self, cur: Cursor, statement: str, parameters: Any, executemany: bool) -> None:
        self.connection = cur.conn
        self.dialect = cur.dialect
        self.cursor = cur.cursor
        self.statement = statement
        self.parameters = parameters
        self.executemany = executemany


class Cursor:
    """The DBAPI cursor of a ``Connection`` for prepared statements run one after another
    in its current transaction. Get it from :func:`cursor_for`, never build one."""

    __slots__ = ("after", "before", "conn", "cursor", "dbapi_conn", "dialect", "echo")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None
        self.dbapi_conn = dbapi_conn
        self.cursor: Any = dbapi_conn.cursor()
        # Looked up once per transaction: a listener added in the middle of one sees the
        # statements of the next.
        self.before = tuple(conn.dispatch.before_cursor_execute)
        self.after = tuple(conn.dispatch.after_cursor_execute)
        self.echo = _SQL_LOG.isEnabledFor(logging.INFO)

    def close(self) -> None:
        # A connection that is gone already took its cursor with it.
        with contextlib.suppress(self.dialect.loaded_dbapi.Error):
            self.cursor.close()


_SQL_LOG = logging.getLogger("sqlalchemy.engine.Engine")
_KEY = "referral.fastpath.cursor"


def cursor_for(source: Session | Connection) -> Cursor:
    """The fast-path cursor of the session's (or connection's) current transaction.

    One per transaction: the cursor of an earlier transaction on the same DBAPI
    connection is closed and replaced, and a connection going back to the pool closes
    its cursor (see :func:`close_on_checkin`).
    """
    conn = source.connection() if isinstance(source, Session) else source
    info = conn.info
    cur: Cursor | None = info.get(_KEY)
    if cur is not None and cur.conn is conn:
        return cur
    if cur is not None:
        cur.close()
    cur = info[_KEY] = Cursor(conn)
    return cur


def close_on_checkin(engine: Engine) -> None:
    """Close a connection's fast-path cursor when the pool takes the connection back."""

    @event.listens_for(engine.pool, "checkin")
    def _close(_dbapi_conn: Any, record: Any) -> None:
        cur = record.info.pop(_KEY, None)
        if cur is not None:
            cur.close()


class Prepared:
    """A Core statement, compiled at first use on each dialect and then reused."""

    def __init__(self, statement: Select[Any] | UpdateBase) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        # The last dialect's compiled form: a process talks to one database kind.
        self._last: tuple[Dialect, _Compiled] | None = None

    def _for(self, dialect: Dialect) -> _Compiled:
        last = self._last
        if last is not None and last[0] is dialect:
            return last[1]
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = _compile(self.statement, dialect)
        self._last = (dialect, found)
        return found

    @staticmethod
    def _params(compiled: _Compiled, given: Mapping[str, Any]) -> Any:
        values = {**compiled.defaults, **given} if compiled.defaults else given
        if compiled.positional:
            return [
                values[name] if proc is None else proc(values[name])
                for name, proc in compiled.binds
            ]
        return {
            name: values[name] if proc is None else proc(values[name])
            for name, proc in compiled.binds
        }

    def _run(self, cur: Cursor, params: Any, *, many: bool) -> _Compiled:
        compiled = self._for(cur.dialect)
        sql = compiled.sql
        if many:
            args: Any = [self._params(compiled, p) for p in params]
        else:
            args = self._params(compiled, params)
        cursor = cur.cursor
        context = None
        if cur.before or cur.after:
            context = FastContext(cur, sql, args, many)
            for listener in cur.before:
                sql, args = listener(cur.conn, cursor, sql, args, context, many)
        if cur.echo:
            _log_statement(cur, sql, args)
        try:
            if many:
                cursor.executemany(sql, args)
            else:
                cursor.execute(sql, args)
        except cur.dialect.loaded_dbapi.Error as err:
            raise self._failed(cur, sql, args, err) from err
        for listener in cur.after:
            listener(cur.conn, cursor, sql, args, context, many)
        return compiled

    @staticmethod
    def _failed(cur: Cursor, sql: str, args: Any, err: Any) -> Exception:
        """The driver's error as SQLAlchemy raises it; a lost connection is invalidated."""
        dialect = cur.dialect
        lost = dialect.is_disconnect(err, cur.dbapi_conn, cur.cursor)
        if lost:
            cur.conn.invalidate(err)
        return DBAPIError.instance(
            sql,
            args,
            err,
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        )

    def rows(self, cur: Cursor, params: Mapping[str, Any]) -> list[Sequence[Any]]:
        """Every row the statement returns, values processed by their column types."""
        compiled = self._run(cur, params, many=False)
        fetched: list[Sequence[Any]] = cur.cursor.fetchall()
        if not compiled.results:
            return fetched
        processed: list[Sequence[Any]] = []
        for row in fetched:
            values = list(row)
            for index, proc in compiled.results:
                values[index] = proc(values[index])
            processed.append(values)
        return processed

    def first(self, cur: Cursor, params: Mapping[str, Any]) -> Sequence[Any] | None:
        found = self.rows(cur, params)
        return found[0] if found else None

    def execute(self, cur: Cursor, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; the number of rows it matched."""
        self._run(cur, params, many=False)
        return int(cur.cursor.rowcount)

    def execute_many(self, cur: Cursor, params: Sequence[Mapping[str, Any]]) -> None:
        if params:
            self._run(cur, params, many=True)


class PreparedInsert:
    """A single-row INSERT whose new id is read as SQLAlchemy itself reads it: the
    driver's ``lastrowid`` where the dialect uses it (SQLite), else ``RETURNING``."""

    def __init__(self, statement: Insert, id_column: Any) -> None:
        self._plain = Prepared(statement)
        self._returning = Prepared(statement.returning(id_column))

    def insert(self, cur: Cursor, params: Mapping[str, Any]) -> int:
        if getattr(cur.dialect, "postfetch_lastrowid", False):
            self._plain.execute(cur, params)
            return int(cur.cursor.lastrowid)
        row = self._returning.first(cur, params)
        assert row is not None
        return int(row[0])


def _log_statement(cur: Cursor, sql: str, args: Any) -> None:
    """Echo as ``Connection.execute`` does, parameters hidden where the engine hides them."""
    _SQL_LOG.info("[fast path] %s", sql)
    if cur.conn.engine.hide_parameters:
        _SQL_LOG.info("[SQL parameters hidden due to hide_parameters=True]")
    else:
        _SQL_LOG.info("[fast path] %r", args)
