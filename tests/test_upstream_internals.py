"""What the engine relies on in its dependencies beyond their documented API.

Each test names the module that relies on it and fails, with a message saying what
changed, on the first release that changes it (the lock refresh runs these first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cel
import pytest
from fastapi import FastAPI
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from engine.definitions.guards import BINDING_MACROS, bound_names

_meta = MetaData()
_items = Table(
    "items",
    _meta,
    Column("id", Integer, primary_key=True),
    Column("name", String(40)),
    Column("size", Integer),
)
DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


def _compiled(statement: Any, dialect: Dialect) -> SQLCompiler:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler), "Core statements no longer compile to SQLCompiler"
    return compiled


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_sqlalchemy_compiler_attributes_the_fast_path_reads(name: str) -> None:
    """engine/store/fastpath.py ``_compile``: the compiled form it turns into a plan."""
    dialect = DIALECTS[name]
    statement = (
        update(_items)
        .where(_items.c.id == bindparam("id"))
        .values(name=bindparam("name"), size=bindparam("size", value=3, required=False))
    )
    compiled = _compiled(statement, dialect)
    for attr in ("literal_execute_params", "post_compile_params"):
        value = getattr(compiled, attr, None)
        assert value is not None and not value, f"SQLCompiler.{attr} changed: {value!r}"
    assert isinstance(compiled.escaped_bind_names, dict) and not compiled.escaped_bind_names
    binds = compiled.bind_names
    assert isinstance(binds, dict), "SQLCompiler.bind_names is no longer a dict"
    assert all(isinstance(b, BindParameter) for b in binds), "bind_names keys changed"
    assert sorted(binds.values()) == ["id", "name", "size"]
    assert isinstance(dialect.positional, bool), "Dialect.positional changed"
    if dialect.positional:
        assert list(compiled.positiontup or []) == ["name", "size", "id"]
    by_name = {n: b for b, n in binds.items()}
    assert by_name["size"].effective_value == 3 and by_name["size"].required is False
    assert by_name["id"].required is True, "BindParameter.required changed"
    assert isinstance(compiled.string, str) and compiled.string.startswith("UPDATE items")


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_sqlalchemy_type_processors_the_fast_path_applies(name: str) -> None:
    """fastpath.py: ``type.dialect_impl(dialect).bind_processor / result_processor``."""
    dialect = DIALECTS[name]
    statement = select(_items.c.id, _items.c.name)
    assert [c.name for c in statement.exported_columns] == ["id", "name"]
    for column in statement.exported_columns:
        impl = column.type.dialect_impl(dialect)
        bind = impl.bind_processor(dialect)
        result = impl.result_processor(dialect, None)
        assert bind is None or callable(bind), f"bind_processor changed for {column.type}"
        assert result is None or callable(result), f"result_processor changed for {column.type}"


def test_sqlalchemy_refuses_what_the_fast_path_refuses() -> None:
    """fastpath.py refuses expanding IN lists by reading post_compile_params."""
    statement = select(_items.c.id).where(_items.c.id.in_(bindparam("ids", expanding=True)))
    assert _compiled(statement, DIALECTS["sqlite"]).post_compile_params, (
        "expanding IN no longer shows in post_compile_params: fastpath would accept it"
    )
    literal = select(_items.c.id).where(_items.c.id == bindparam("x", literal_execute=True))
    assert _compiled(literal, DIALECTS["sqlite"]).literal_execute_params


def test_sqlalchemy_cursor_listeners_the_fast_path_calls_itself() -> None:
    """fastpath.py calls ``Connection.dispatch.before_cursor_execute`` listeners itself,
    with SQLAlchemy's own calling convention, and wraps driver errors with
    ``DBAPIError.instance`` after asking ``dialect.is_disconnect``."""
    engine = create_engine("sqlite://")
    seen: list[tuple[str, Any, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _plain(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
               many: bool) -> None:
        seen.append((statement, params, many))

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _rewriting(conn: Any, cursor: Any, statement: str, params: Any, context: Any,
                   many: bool) -> tuple[str, Any]:
        return statement + " -- seen", params

    with engine.connect() as conn:
        listeners: list[Callable[..., Any]] = list(conn.dispatch.before_cursor_execute)
        assert len(listeners) == 2, "Connection.dispatch.before_cursor_execute changed"
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        sql, args = "SELECT ?", [1]
        for listener in listeners:
            sql, args = listener(conn, cursor, sql, args, None, False)
        assert (sql, args) == ("SELECT ? -- seen", [1]), (
            "a listener no longer returns (statement, parameters) when called directly"
        )
        assert seen == [("SELECT ?", [1], False)]
        dialect = conn.dialect
        error = dialect.loaded_dbapi.OperationalError("boom")
        assert dialect.is_disconnect(error, conn.connection.dbapi_connection, cursor) is False
        wrapped = DBAPIError.instance(
            "SELECT 1", (), error, dialect.loaded_dbapi.Error,
            connection_invalidated=False, dialect=dialect,
        )
        assert isinstance(wrapped, DBAPIError) and wrapped.orig is error
        cursor.close()
    engine.dispose()


@pytest.mark.parametrize("macro", BINDING_MACROS)
def test_cel_lists_comprehension_variables_among_the_program_variables(macro: str) -> None:
    """engine/definitions/guards.py: ``Program.variables()`` names the variables a macro
    binds, so the guard compiler reads the binders from the source to tell them from
    fields. When a release stops listing them, the source reading can go; when it lists
    something else, guards would call a bound name an undeclared field."""
    two = macro in ("transformMap", "transformList")
    text = f"items.{macro}(k, v, v == 1)" if two else f"items.{macro}(k, k == 1)"
    program = cel.compile(text)
    expected = {"items", "k", "v"} if two else {"items", "k"}
    assert set(program.variables()) == expected, (
        f"cel {macro}: variables() is now {program.variables()}; revisit guards.bound_names"
    )
    assert bound_names(text) == expected - {"items"}


def test_fastapi_iter_route_contexts_still_walks_the_routes() -> None:
    """api/errors.py ``_allowed_methods``: the undocumented ``iter_route_contexts``."""
    from fastapi.routing import iter_route_contexts

    app = FastAPI()

    @app.get("/things/{thing}")
    def _get(thing: int) -> int:
        return thing

    @app.delete("/things/{thing}")
    def _delete(thing: int) -> int:
        return thing

    methods: set[str] = set()
    for route in iter_route_contexts(app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and getattr(route, "methods", None) and regex.match("/things/1"):
            methods |= set(route.methods)
    assert methods == {"GET", "DELETE"}, f"iter_route_contexts changed: {methods}"
