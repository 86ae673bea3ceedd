"""Browser sessions, kept server-side: signing out deletes one, and the hub is asked again about its user.

The cookie holds a random id (signed); the row, keyed by the id's SHA-256, holds the user and the admin
flag. At most every ``PORTAL_HUB_CHECK_SECONDS`` (60) the hub is asked about the user again, with the
portal's service token: a user the hub no longer has is signed out, and a demoted admin is a plain user
from then on. While the hub cannot answer, a session whose check is overdue keeps its user but not its
admin rights (it fails closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.app.auth.cookies import CookieSigner
from portal.app.auth.hub import HubClient, HubUnavailable
from portal.app.auth.principal import Principal
from portal.app.auth.tokens import digest
from portal.models import PortalSession

log = logging.getLogger(__name__)
sessions = PortalSession.__table__


class SessionStore:
    def __init__(self, engine: sa.Engine, signer: CookieSigner, hub: HubClient | None, *,
                 clock: Callable[[], datetime], check_seconds: float) -> None:
        self.engine, self.signer, self.hub, self.clock = engine, signer, hub, clock
        self.check_seconds = check_seconds

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
            with self.engine.begin() as connection:
                connection.execute(sa.delete(sessions).where(sessions.c.id_sha256 == digest(session_id)))

    def _row(self, session_id: str):
        with self.engine.connect() as connection:
            return connection.execute(sa.select(sessions).where(sessions.c.id_sha256 == digest(session_id))).first()

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
        row = await run_in_threadpool(self._row, session_id)
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
                    await run_in_threadpool(self._update, session_id, None)
                    log.info("session ended: JupyterHub no longer has the user", extra={"user": row.user_name})
                    return None
                admin = model.get("admin") is True
                await run_in_threadpool(self._update, session_id, {"admin": admin, "checked_at": now})
        return Principal(name=row.user_name, admin=admin, via="session", role="admin" if admin else "user",
                         session_id=session_id)
