"""Cached views and pages are forgotten when the data they are built from changes in this process.

Pages are built from the sessions, their daily rollups, the users' limits and the rates. Whoever writes
them through the portal's engine (the collector opening and closing sessions and adding their rollups, an
admin's limit or rate edit, the configured rates applied at start), the caches of every app on that engine
are cleared when the transaction commits, so no page shows data older than a committed change. They are
cleared twice: as the commit starts (SQLAlchemy's ``commit`` event comes before the database's commit),
and again once the connection is given back to the pool, after it; a render that read the data in between
is not kept (``ViewCache.clear``: a value computed across a clear is not cached).

Not watched, so that routine writes keep the caches: the sign-in sessions, the audit log, the collector's
heartbeat (``portal_meta``), the MySQL outbox and the GPU samples (utilisation is shown at most
``PORTAL_VIEW_CACHE_SECONDS`` old). A write made outside this process (another replica, psql) is seen once
the entries expire, after at most that long.
"""

from __future__ import annotations

import weakref
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import event

from portal.models import PodSession, Rate, UsageDaily, User

WATCHED = frozenset(model.__tablename__ for model in (PodSession, UsageDaily, User, Rate))
_DML = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE")
_CHANGED = "portal_watched_change"  # in the DBAPI connection's info: this transaction wrote a watched table
_CLEAR_AT_CHECKIN = "portal_clear_at_checkin"


class Clearable(Protocol):
    def clear(self) -> None: ...


_caches: weakref.WeakKeyDictionary[sa.Engine, weakref.WeakSet] = weakref.WeakKeyDictionary()


def clear_on_change(engine: sa.Engine, *caches: Clearable) -> None:
    """Clear ``caches`` after every committed transaction on ``engine`` that wrote a watched table. The
    caches are held weakly: an app that is gone is no longer cleared."""
    known = _caches.get(engine)
    if known is None:
        known = _caches[engine] = weakref.WeakSet()
        event.listen(engine, "after_cursor_execute", _note_write)
        event.listen(engine, "commit", _committed)
        event.listen(engine, "rollback", _rolled_back)
        event.listen(engine, "checkin", _checked_in)
    known.update(caches)


def writes_watched(context, statement: str) -> bool:
    """Whether a statement that ran may have changed a watched table (an unknown target counts)."""
    if context is not None and (context.isinsert or context.isupdate or context.isdelete):
        table = getattr(getattr(context.compiled, "statement", None), "table", None)
        return getattr(table, "name", None) in WATCHED or table is None
    return statement.lstrip()[:8].upper().startswith(_DML)  # text(): the table is not known


def _note_write(connection, cursor, statement, parameters, context, executemany) -> None:
    if not connection.info.get(_CHANGED) and writes_watched(context, statement):
        connection.info[_CHANGED] = True


def _clear(caches) -> None:
    for cache in list(caches):
        cache.clear()


def _committed(connection) -> None:
    if connection.info.pop(_CHANGED, False):
        caches = _caches.get(connection.engine, ())
        _clear(caches)
        connection.info[_CLEAR_AT_CHECKIN] = caches


def _checked_in(dbapi_connection, connection_record) -> None:
    if connection_record is None:
        return
    caches = connection_record.info.pop(_CLEAR_AT_CHECKIN, None)
    if caches is not None:
        _clear(caches)


def _rolled_back(connection) -> None:
    connection.info.pop(_CHANGED, None)
