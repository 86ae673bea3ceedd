"""Alembic environment: metadata from the SQLModel tables, URL from the portal settings."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import portal.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from portal.db import make_engine
from portal.sqltypes import UTCDateTime

config = context.config
if config.config_file_name and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return url
    from portal.settings import load_settings

    return load_settings().database_url.get_secret_value()


def _render_item(kind: str, obj, _autogen_context):
    """Write plain SQLAlchemy types into revisions, so that they never import application code."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=SQLModel.metadata,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=True,  # SQLite needs table rebuilds for most ALTERs
        **kwargs,
    )


def run_offline() -> None:
    _configure(url=_database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = make_engine(_database_url())
    try:
        with engine.connect() as connection:
            _configure(connection=connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
