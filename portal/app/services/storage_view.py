"""The storage view: each user's directory with its size, owner and last use (from session data),
and the admin's removal of directories idle for a chosen number of days (confirmed and audited).
"""

from __future__ import annotations

import pwd
import string
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from portal.app.services import audit
from portal.app.services.storage import (
    DirectoryFacts,
    StorageError,
    check_base,
    facts_of,
    remove_directory,
    scan,
)
from portal.models import PodSession

_S = PodSession.__table__
_SAFE = set(string.ascii_lowercase + string.digits)


def kubespawner_escape(name: str) -> str:
    """The legacy KubeSpawner form of a user name ("Alice.B" -> "-41lice-2e-42"), used in directory names."""
    out = []
    for char in name:
        out.append(char if char in _SAFE else "".join(f"-{byte:02X}" for byte in char.encode()))
    return "".join(out).lower()


@dataclass(frozen=True)
class StorageEntry:
    name: str
    user: str | None  # the portal user this directory belongs to, when known
    size_bytes: int | None
    size_source: str | None
    owner_uid: int
    owner: str | None  # the owner's account name on the portal's host, when it has one
    modified_at: datetime
    last_session_at: datetime | None
    running: bool
    last_used_at: datetime

    def idle_days(self, now: datetime) -> float:
        return 0.0 if self.running else max((now - self.last_used_at).total_seconds() / 86400, 0.0)

    def as_json(self, now: datetime) -> dict:
        return {"name": self.name, "user": self.user, "size_bytes": self.size_bytes, "size_source": self.size_source,
                "owner_uid": self.owner_uid, "owner": self.owner, "modified_at": self.modified_at.isoformat(),
                "last_session_at": self.last_session_at.isoformat() if self.last_session_at else None,
                "running": self.running, "last_used_at": self.last_used_at.isoformat(),
                "idle_days": round(self.idle_days(now), 2)}


def user_activity(connection: sa.Connection) -> dict[str, tuple[datetime, bool]]:
    """Per user: the end of their last session (last seen for open ones), and whether one is open."""
    query = sa.select(
        _S.c.user_name,
        sa.func.max(sa.func.coalesce(_S.c.ended_at, _S.c.last_seen_at)),
        sa.func.max(sa.case((_S.c.ended_at.is_(None), 1), else_=0)),
    ).group_by(_S.c.user_name)
    return {row[0]: (row[1], bool(row[2])) for row in connection.execute(query)}


def _owner(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _entry(facts: DirectoryFacts, activity: dict[str, tuple[datetime, bool]], by_dir: dict[str, str]) -> StorageEntry:
    user = facts.name if facts.name in activity else by_dir.get(facts.name)
    last, running = activity.get(user, (None, False)) if user else (None, False)
    last_used = max(facts.modified_at, last) if last else facts.modified_at
    return StorageEntry(facts.name, user, facts.size_bytes, facts.size_source, facts.owner_uid, _owner(facts.owner_uid),
                        facts.modified_at, last, running, last_used)


def overview(connection: sa.Connection, base: Path, *, walk_limit: int, user: str | None = None) -> list[StorageEntry]:
    """Every directory (or only ``user``'s: then only theirs is measured)."""
    activity = user_activity(connection)
    by_dir = {kubespawner_escape(name): name for name in activity}
    if user is None:
        found = scan(base, walk_limit=walk_limit)
    else:
        check_base(base)
        found = [f for f in (facts_of(base, name, walk_limit=walk_limit)
                             for name in sorted({user, kubespawner_escape(user)})) if f is not None]
    entries = [_entry(facts, activity, by_dir) for facts in found]
    return entries if user is None else [e for e in entries if e.user == user]


def remove_idle(engine: sa.Engine, base: Path, *, name: str, idle_days: int, actor: str, now: datetime,
                walk_limit: int) -> StorageEntry:
    """Remove one directory if it is (still) idle for ``idle_days``; audited before and after."""
    facts = facts_of(base, name, walk_limit=walk_limit)
    if facts is None:
        raise StorageError(404, f"no storage directory {name!r}")
    with engine.connect() as connection:
        activity = user_activity(connection)
    entry = _entry(facts, activity, {kubespawner_escape(user): user for user in activity})
    if entry.running:
        raise StorageError(409, f"{name!r} belongs to a user with a running server")
    if entry.idle_days(now) < idle_days:
        raise StorageError(409, f"{name!r} was last used {entry.idle_days(now):.1f} days ago, "
                                f"less than {idle_days} days")
    detail = {"idle_days": idle_days, "user": entry.user, "size_bytes": entry.size_bytes,
              "last_used_at": entry.last_used_at.isoformat()}
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
    """Remove every directory idle for ``idle_days`` (only when an operator configured it); audited each."""
    with engine.connect() as connection:
        candidates = [e.name for e in overview(connection, base, walk_limit=walk_limit)
                      if not e.running and e.idle_days(now) >= idle_days]
    removed = []
    for name in candidates:
        try:
            remove_idle(engine, base, name=name, idle_days=idle_days, actor=actor, now=now, walk_limit=walk_limit)
            removed.append(name)
        except StorageError:
            continue  # changed since the scan (or refused): the audit log has the reason when it got that far
    return removed
