"""The storage view: each user's directory with its size, owner and last use (from session data),
and the admin's removal of directories idle for a chosen number of days (confirmed and audited).

A directory belongs to the users whose KubeSpawner slug it is (the ``safe`` scheme first, the legacy
``escape`` one as a fallback). Removal refuses, by hand and automatically:
  * a directory of a user with a running server (any user the name may belong to);
  * a directory with no known owner, unless the admin confirms it as an orphan (never automatically);
  * a directory whose last use is not known (its walk was cut short) or more recent than asked.
Its last use is the newest of its owners' last sessions and the newest modification found in the tree.
Automatic removal also waits until the collector has been recording for at least the idle period, so
that "no session for N days" means what it says.
"""

from __future__ import annotations

import logging
import pwd
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from portal.app.services import audit
from portal.app.services.slugs import directory_names, escape_slug
from portal.app.services.storage import (
    DirectoryFacts,
    StorageError,
    check_base,
    child_directories,
    directory_stat,
    facts_of,
    measure,
    remove_directory,
    unmeasured,
)
from portal.meta import COLLECTOR_SINCE, read_time
from portal.models import PodSession, User

log = logging.getLogger(__name__)
_S = PodSession.__table__
_U = User.__table__

kubespawner_escape = escape_slug  # the legacy name, kept for callers


@dataclass(frozen=True)
class StorageEntry:
    name: str
    user: str | None  # the portal user this directory belongs to, when known
    owners: tuple[str, ...]  # every known user whose slug this name is (usually one)
    size_bytes: int | None
    size_source: str | None
    owner_uid: int
    owner: str | None  # the owner's account name on the portal's host, when it has one
    modified_at: datetime  # newest modification found in the tree
    activity_known: bool  # False when the walk was cut short: a newer change may exist
    last_session_at: datetime | None
    running: bool
    last_used_at: datetime

    def idle_days(self, now: datetime) -> float | None:
        """Days since the last use; 0 while running; None when the last use is not known."""
        if self.running:
            return 0.0
        if not self.activity_known:
            return None
        return max((now - self.last_used_at).total_seconds() / 86400, 0.0)

    def as_json(self, now: datetime) -> dict:
        idle = self.idle_days(now)
        return {"name": self.name, "user": self.user, "owners": list(self.owners), "size_bytes": self.size_bytes,
                "size_source": self.size_source, "owner_uid": self.owner_uid, "owner": self.owner,
                "modified_at": self.modified_at.isoformat(), "activity_known": self.activity_known,
                "last_session_at": self.last_session_at.isoformat() if self.last_session_at else None,
                "running": self.running, "last_used_at": self.last_used_at.isoformat(),
                "idle_days": None if idle is None else round(idle, 2)}


Activity = dict[str, tuple[datetime | None, bool]]


def user_activity(connection: sa.Connection) -> Activity:
    """Per known user (sessions or limits of their own): the end of their last session (last seen for
    open ones; None without sessions) and whether one is open."""
    query = sa.select(
        _S.c.user_name,
        sa.func.max(sa.func.coalesce(_S.c.ended_at, _S.c.last_seen_at)),
        sa.func.max(sa.case((_S.c.ended_at.is_(None), 1), else_=0)),
    ).group_by(_S.c.user_name)
    activity: Activity = {row[0]: (row[1], bool(row[2])) for row in connection.execute(query)}
    for (name,) in connection.execute(sa.select(_U.c.name)):
        activity.setdefault(name, (None, False))
    return activity


def owners_by_directory(users) -> dict[str, tuple[str, ...]]:
    """Directory name -> the users it may belong to, owners under the current scheme first."""
    found: dict[str, list[tuple[int, str]]] = {}
    for user in users:
        for rank, name in enumerate(directory_names(user)):
            found.setdefault(name, []).append((rank, user))
    return {name: tuple(user for _, user in sorted(pairs)) for name, pairs in found.items()}


def _owner(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _entry(facts: DirectoryFacts, activity: Activity, by_dir: dict[str, tuple[str, ...]]) -> StorageEntry:
    owners = by_dir.get(facts.name, ())
    sessions = [activity[user][0] for user in owners if activity[user][0] is not None]
    last = max(sessions) if sessions else None
    running = any(activity[user][1] for user in owners)
    last_used = max(facts.modified_at, last) if last else facts.modified_at
    return StorageEntry(facts.name, owners[0] if owners else None, owners, facts.size_bytes, facts.size_source,
                        facts.owner_uid, _owner(facts.owner_uid), facts.modified_at, facts.activity_known, last,
                        running, last_used)


class ScanCache:
    """Recently measured directories, so that a listing does not walk every tree on every request.

    A request walks at most ``budget`` entries in all; a directory left without budget is shown as not
    measured (a later request measures it). Removal never uses this cache: it measures afresh.
    """

    def __init__(self, *, ttl_seconds: float, budget: int, walk_limit: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.budget, self.walk_limit, self.clock = ttl_seconds, budget, walk_limit, clock
        self._facts: dict[tuple[str, str], tuple[float, DirectoryFacts]] = {}
        self._lock = threading.Lock()

    def facts(self, base: Path, directories) -> list[DirectoryFacts]:
        remaining, now, found = self.budget, self.clock(), []
        for name, info in directories:
            key = (str(base), name)
            with self._lock:
                cached = self._facts.get(key)
            if cached is not None and now - cached[0] < self.ttl:
                facts = cached[1]
                if info.st_mtime > facts.modified_at.timestamp():  # changed at the top since: newer still
                    facts = replace(facts, modified_at=datetime.fromtimestamp(info.st_mtime, UTC))
            elif remaining > 0:
                facts = measure(base, name, info, walk_limit=min(self.walk_limit, remaining))
                remaining -= max(facts.entries_walked, 1)
                if facts.activity_known or facts.entries_walked >= self.walk_limit:
                    with self._lock:
                        self._facts[key] = (now, facts)
            else:
                facts = unmeasured(name, info)
            found.append(facts)
        return found


def overview(connection: sa.Connection, base: Path, *, walk_limit: int, user: str | None = None,
             cache: ScanCache | None = None) -> list[StorageEntry]:
    """Every directory (or only ``user``'s: then only theirs is measured)."""
    activity = user_activity(connection)
    if user is not None:
        activity.setdefault(user, (None, False))
    by_dir = owners_by_directory(activity)
    if user is None:
        directories = child_directories(base)
    else:
        check_base(base)
        directories = [(name, info) for name in directory_names(user) if (info := directory_stat(base, name))]
    if cache is not None:
        found = cache.facts(base, directories)
    else:
        found = [measure(base, name, info, walk_limit=walk_limit) for name, info in directories]
    entries = [_entry(facts, activity, by_dir) for facts in found]
    return entries if user is None else [e for e in entries if user in e.owners]


def collecting_since(connection: sa.Connection) -> datetime | None:
    """When the collector began recording sessions into this database (None: never)."""
    return read_time(connection, COLLECTOR_SINCE)


def remove_idle(engine: sa.Engine, base: Path, *, name: str, idle_days: int, actor: str, now: datetime,
                walk_limit: int, orphan: bool = False) -> StorageEntry:
    """Remove one directory if it is (still) idle for ``idle_days``; audited before and after.

    ``orphan``: the admin confirmed that a directory without a known owner may go.
    """
    facts = facts_of(base, name, walk_limit=walk_limit)  # measured now, never from a cache
    if facts is None:
        raise StorageError(404, f"no storage directory {name!r}")
    with engine.connect() as connection:
        activity = user_activity(connection)
    entry = _entry(facts, activity, owners_by_directory(activity))
    if entry.running:
        raise StorageError(409, f"{name!r} belongs to a user with a running server")
    if entry.user is None and not orphan:
        raise StorageError(409, f"{name!r} belongs to no known user: confirm that it is an orphan to remove it")
    idle = entry.idle_days(now)
    if idle is None:
        raise StorageError(409, f"{name!r} holds more than {walk_limit} entries, so its last use is not known "
                                "(raise PORTAL_STORAGE_WALK_MAX_ENTRIES to check it)")
    if idle < idle_days:
        raise StorageError(409, f"{name!r} was last used {idle:.1f} days ago, less than {idle_days} days")
    detail = {"idle_days": idle_days, "user": entry.user, "orphan": entry.user is None,
              "size_bytes": entry.size_bytes, "last_used_at": entry.last_used_at.isoformat()}
    entry_id = audit.start(engine, actor=actor, action="storage.remove", target=name, detail=detail, at=now)
    try:
        remove_directory(base, name)
    except StorageError as exc:
        audit.finish(engine, entry_id, detail={**detail, "reason": exc.reason}, result="refused")
        raise
    except OSError as exc:
        audit.finish(engine, entry_id, detail={**detail, "reason": exc.strerror or str(exc)}, result="failed")
        raise StorageError(500, f"removing {name!r} failed part way: {exc.strerror or exc}") from None
    audit.finish(engine, entry_id, detail=detail, result="ok")
    return entry


def remove_all_idle(engine: sa.Engine, base: Path, *, idle_days: int, now: datetime, walk_limit: int,
                    actor: str = "system:auto-remove") -> list[str]:
    """Remove every directory of a known user idle for ``idle_days`` (only when an operator configured it);
    audited each. Nothing is removed before the collector has recorded sessions for ``idle_days``."""
    with engine.connect() as connection:
        since = collecting_since(connection)
        if since is None or (now - since).total_seconds() < idle_days * 86400:
            log.warning("automatic storage removal waits: sessions are recorded since %s, not yet %d days",
                        since.isoformat() if since else "never", idle_days)
            return []
        candidates = [e.name for e in overview(connection, base, walk_limit=walk_limit)
                      if e.user is not None and not e.running and (e.idle_days(now) or 0.0) >= idle_days]
    removed = []
    for name in candidates:
        try:
            remove_idle(engine, base, name=name, idle_days=idle_days, actor=actor, now=now, walk_limit=walk_limit)
            removed.append(name)
        except StorageError:
            continue  # changed since the scan (or refused): the audit log has the reason when it got that far
    return removed
