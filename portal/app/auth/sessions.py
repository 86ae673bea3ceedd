"""Browser sessions, kept server-side: signing out deletes one, and the hub is asked again about its user.

The cookie holds a random id (signed); the row, keyed by the id's SHA-256, holds the user and the admin
flag. At most every ``PORTAL_HUB_CHECK_SECONDS`` (60) the hub is asked about the user again, with the
portal's service token: a user the hub no longer has is signed out, and a demoted admin is a plain user
from then on. While the hub cannot answer, a session whose check is overdue keeps its user but not its
admin rights (it fails closed).

A session row read from the database is kept in this process for ``PORTAL_SESSION_CACHE_SECONDS`` (5; 0
turns it off), so that a page load does not wait on PostgreSQL for it. Signing out, and the hub's answers
(user gone, admin flag), update this copy at once; expiry is checked on every request. Only a row deleted
outside this process (another replica, by hand) is still honoured for at most that long. Rows not cached
are read in batches: the sessions asked for while one read is under way are read together by the next, in
one statement (fifty browsers arriving at once cost a few statements, not fifty).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.app.auth.cookies import CookieSigner
from portal.app.auth.hub import HubClient, HubUnavailable
from portal.app.auth.batched import BatchedReads
from portal.app.auth.principal import Principal
from portal.app.auth.tokens import digest
from portal.models import PortalSession

log = logging.getLogger(__name__)
sessions = PortalSession.__table__
MAX_CACHED = 10_000


@dataclass(frozen=True, slots=True)
class _Row:
    user_name: str
    admin: bool
    expires_at: datetime
    checked_at: datetime


class SessionStore:
    def __init__(self, engine: sa.Engine, signer: CookieSigner, hub: HubClient | None, *,
                 clock: Callable[[], datetime], check_seconds: float, cache_seconds: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.signer, self.hub, self.clock = engine, signer, hub, clock
        self.check_seconds, self.cache_seconds, self.monotonic = check_seconds, cache_seconds, monotonic
        self._cache: dict[str, tuple[float, _Row]] = {}  # id_sha256 -> (until, row)
        self._cache_lock = threading.Lock()
        self._epoch = 0  # counts evictions: a row read before one is not cached after it
        self._reads = BatchedReads(self._rows)

    def _cached(self, key: str) -> _Row | None:
        if self.cache_seconds <= 0:
            return None
        hit = self._cache.get(key)
        if hit is None or hit[0] <= self.monotonic():
            return None
        return hit[1]

    def _forget(self, key: str) -> None:
        with self._cache_lock:
            self._epoch += 1
            self._cache.pop(key, None)

    def _remember(self, key: str, row: _Row, epoch: int) -> None:
        if self.cache_seconds <= 0:
            return
        with self._cache_lock:
            if epoch != self._epoch:  # a session was signed out meanwhile: this row may be the one
                return
            now = self.monotonic()
            if len(self._cache) >= MAX_CACHED:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= MAX_CACHED:
                    self._cache = {}
            self._cache[key] = (now + self.cache_seconds, row)

    def create(self, *, name: str, admin: bool) -> str:
        """A new session of ``name``; returns the cookie value. Expired sessions are swept here."""
        session_id, now = self.signer.new_session_id(), self.clock()
        with self.engine.begin() as connection:
            connection.execute(sa.delete(sessions).where(sessions.c.expires_at < now))
            connection.execute(sa.insert(sessions).values(
                id_sha256=digest(session_id), user_name=name, admin=bool(admin), created_at=now,
                expires_at=now + timedelta(seconds=self.signer.max_age), checked_at=now))
        return self.signer.session_value(session_id)

    def revoke(self, cookie: str | None) -> None:
        session_id = self.signer.read_session(cookie)
        if session_id is not None:
            key = digest(session_id)
            self._forget(key)
            with self.engine.begin() as connection:
                connection.execute(sa.delete(sessions).where(sessions.c.id_sha256 == key))
            self._forget(key)  # a request that read the row meanwhile must not keep it

    def _rows(self, keys: list[str]) -> dict[str, _Row]:
        """The session rows of these id digests (those that exist), in one statement."""
        with self.engine.connect() as connection:
            found = connection.execute(sa.select(sessions).where(sessions.c.id_sha256.in_(keys)))
            return {row.id_sha256: _Row(user_name=row.user_name, admin=row.admin, expires_at=row.expires_at,
                                        checked_at=row.checked_at) for row in found}

    def _update(self, session_id: str, values: dict | None) -> None:
        with self.engine.begin() as connection:
            where = sessions.c.id_sha256 == digest(session_id)
            connection.execute(sa.delete(sessions).where(where) if values is None
                               else sa.update(sessions).where(where).values(**values))

    async def principal(self, cookie: str | None) -> Principal | None:
        """The signed-in user of a session cookie, or None (unsigned, expired, signed out, or gone at the hub)."""
        from starlette.concurrency import run_in_threadpool

        session_id = self.signer.read_session(cookie)
        if session_id is None:
            return None
        key, epoch = digest(session_id), self._epoch
        row = self._cached(key)
        if row is None:
            row = await self._reads.get(key)
            if row is not None:
                self._remember(key, row, epoch)
        now = self.clock()
        if row is None or row.expires_at <= now:
            return None
        admin = row.admin
        if self.hub is not None and (now - row.checked_at).total_seconds() >= self.check_seconds:
            try:
                model = await self.hub.user_by_name(row.user_name)
            except HubUnavailable as exc:
                log.warning("cannot re-check a session's user with JupyterHub (%s): admin rights withheld", exc)
                admin = False
            else:
                if model is None:
                    self._forget(key)
                    await run_in_threadpool(self._update, session_id, None)
                    self._forget(key)
                    log.info("session ended: JupyterHub no longer has the user", extra={"user": row.user_name})
                    return None
                admin = model.get("admin") is True
                await run_in_threadpool(self._update, session_id, {"admin": admin, "checked_at": now})
                self._remember(key, replace(row, admin=admin, checked_at=now), epoch)
        return Principal(name=row.user_name, admin=admin, via="session", role="admin" if admin else "user",
                         session_id=session_id)
