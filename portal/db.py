"""Engines, sessions and migrations, made on demand (no import-time engine)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from portal.settings import PortalSettings

_PORTAL_DIR = Path(__file__).resolve().parent


def make_engine(url: str, **kwargs: object) -> Engine:
    """An engine for ``url``; SQLite gets settings that make it safe for the collector's threads."""
    options: dict = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        options = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    options.update(kwargs)
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the API) do not block the collector
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def engine_from_settings(settings: PortalSettings, **kwargs: object) -> Engine:
    return make_engine(settings.database_url.get_secret_value(), **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str):
    """The Alembic config of the portal, pointed at ``url`` (passed as an attribute, never logged)."""
    from alembic.config import Config

    config = Config(str(_PORTAL_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(_PORTAL_DIR / "migrations"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False  # the calling program owns logging
    return config


SUPPORTED_BACKENDS = ("postgresql", "sqlite")


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (the latest by default).

    Only PostgreSQL and SQLite: their DDL runs in a transaction, so a failed migration leaves nothing half
    applied. Any other database is refused before anything is sent to it.
    """
    from alembic import command
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"the portal database must be PostgreSQL or SQLite, not {backend}")

    command.upgrade(alembic_config(url), revision)
