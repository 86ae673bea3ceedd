"""Portable SQL pieces: UTC timestamps and time arithmetic that work on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timezone-aware timestamp stored in UTC.

    PostgreSQL keeps it as ``timestamptz``; SQLite has no such type, so the value is stored as naive UTC
    text and given back as aware UTC. Naive datetimes are refused: their zone would be a guess.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | str | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text from expressions that bypass the column type
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class seconds_between(FunctionElement):
    """Seconds from the first timestamp to the second, as a float (negative when reversed)."""

    type = sa.Float()
    inherit_cache = True


@compiles(seconds_between, "postgresql")
def _seconds_between_pg(element, compiler, **kw):
    start, end = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)}))"


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element, compiler, **kw):
    start, end = list(element.clauses)
    return (
        f"((julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)})) * 86400.0)"
    )


class greatest(FunctionElement):
    """The later of timestamps (GREATEST on PostgreSQL, scalar MAX on SQLite)."""

    type = UTCDateTime()
    inherit_cache = True


class least(FunctionElement):
    """The earlier of timestamps (LEAST on PostgreSQL, scalar MIN on SQLite)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(greatest)
def _greatest(element, compiler, **kw):
    return f"GREATEST({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "sqlite")
def _greatest_sqlite(element, compiler, **kw):
    return f"MAX({compiler.process(element.clauses, **kw)})"


@compiles(least)
def _least(element, compiler, **kw):
    return f"LEAST({compiler.process(element.clauses, **kw)})"


@compiles(least, "sqlite")
def _least_sqlite(element, compiler, **kw):
    return f"MIN({compiler.process(element.clauses, **kw)})"


def upsert(connection: sa.Connection, table: sa.Table):
    """An INSERT that supports ON CONFLICT for this connection's dialect (PostgreSQL or SQLite)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif connection.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(f"the portal database must be PostgreSQL or SQLite, not {connection.dialect.name}")
    return insert(table)


def rows_source(connection: sa.Connection, table: sa.Table, rows: list[dict], columns: list[str]) -> sa.Select | None:
    """On PostgreSQL, a SELECT over ``unnest`` of one array per column: a whole batch in one statement
    with one parameter per column (thousands of rows need no per-row placeholders). None elsewhere.
    """
    if connection.dialect.name != "postgresql":
        return None
    from sqlalchemy.dialects.postgresql import ARRAY

    def values(name: str) -> list:
        column = [row[name] for row in rows]
        if isinstance(table.c[name].type, sa.Float):  # the driver refuses lists mixing int and float
            column = [None if v is None else float(v) for v in column]
        return column

    arrays = [
        sa.cast(sa.bindparam(f"rows_{name}", values(name), type_=ARRAY(table.c[name].type)),
                ARRAY(table.c[name].type))
        for name in columns
    ]
    source = sa.func.unnest(*arrays).table_valued(*columns).render_derived()
    return sa.select(*(source.c[name] for name in columns))


def column_in(connection: sa.Connection, column: sa.Column, values: list) -> sa.ColumnElement[bool]:
    """``column IN values``; on PostgreSQL as ``= ANY(array)``, one parameter however many values."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.cast(sa.bindparam(None, values, type_=ARRAY(column.type)), ARRAY(column.type)))
    return column.in_(values)
