"""The user's notices from the usage portal (idle GPUs and their reclaim) as a banner on the hub's own pages.

The hub asks the portal server-side, with its own portal token (portal.tokenEnv, role "hub"):
    GET {portal.url}/api/users/{username}/notices
    {"notices": [{"kind": "idle-gpu", "server_name": "", "pod_name": "jupyter-alice", "gpu_count": 2,
                  "idle_since": "...Z", "stop_at": "...Z" | null, "message": "Your server holds 2 GPUs ..."}]}
so a user who never opened the portal (no portal session) sees them too.

`NoticeCache.template_var` is a `JupyterHub.template_vars` callable: JupyterHub calls it with the current user
(None when signed out) at every render, and templates/page.html calls what it returns, `jhub_notices()`.
In JupyterHub's async templates that call awaits the portal at most once per user per notices.refreshSeconds,
for at most notices.timeoutSeconds, without blocking the hub's event loop; in its sync templates (error pages)
it answers what the cache holds. A portal that is down, slow or answers badly costs one log line and shows no
banner; the page itself never fails.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from urllib.parse import quote

from jinja2 import pass_environment

from jhub_limits import PortalUnavailable, portal_get

log = logging.getLogger("jhub.notices")
MAX_USERS = 10000  # cache entries kept; the least recently refreshed go first


def _notices(answer) -> list[dict]:
    """The notices of the portal's answer, each with the fields the banner shows; ValueError if unreadable."""
    notices = answer.get("notices") if isinstance(answer, dict) else None
    if not isinstance(notices, list):
        raise ValueError("no 'notices' list")
    out = []
    for notice in notices:
        if not (isinstance(notice, dict) and isinstance(notice.get("message"), str)):
            raise ValueError("a notice without a 'message'")
        out.append({"kind": str(notice.get("kind") or ""), "message": notice["message"],
                    "stop_at": notice.get("stop_at") if isinstance(notice.get("stop_at"), str) else None})
    return out


class NoticeCache:
    """Each user's notices, refreshed from the portal at most every `notices.refreshSeconds`."""

    def __init__(self, portal: dict, *, clock=time.monotonic):
        self.portal = portal
        self.refresh_seconds = portal["notices"]["refreshSeconds"]
        self.timeout_seconds = portal["notices"]["timeoutSeconds"]
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, list[dict]]] = OrderedDict()  # name -> (fetched at, notices)
        self._pending: dict[str, asyncio.Future] = {}  # one request per user at a time, shared by its pages

    def cached(self, name: str) -> list[dict]:
        entry = self._entries.get(name)
        return entry[1] if entry else []

    async def notices(self, name: str) -> list[dict]:
        entry = self._entries.get(name)
        if entry and self.clock() - entry[0] < self.refresh_seconds:
            return entry[1]
        pending = self._pending.get(name)
        if pending is None:
            pending = self._pending[name] = asyncio.ensure_future(self._refresh(name))
        return await asyncio.shield(pending)  # a page that goes away does not cancel the others' request

    async def _refresh(self, name: str) -> list[dict]:
        try:
            url, answer = await portal_get(f"/api/users/{quote(name, safe='')}/notices", self.portal,
                                           timeout=self.timeout_seconds)
            try:
                notices = _notices(answer)
            except ValueError as exc:
                raise PortalUnavailable(f"{url}: unreadable answer ({exc})") from None
        except PortalUnavailable as exc:
            log.warning("no notices banner for %s: the portal gave no answer: %s", name, exc)
            notices = []  # and no new try before refreshSeconds: a portal outage costs one request per user
        except Exception as exc:  # never fail the page
            log.warning("no notices banner for %s: %s: %s", name, type(exc).__name__, exc)
            notices = []
        finally:
            self._pending.pop(name, None)
        self._entries[name] = (self.clock(), notices)
        self._entries.move_to_end(name)
        while len(self._entries) > MAX_USERS:
            self._entries.popitem(last=False)
        return notices

    def template_var(self, user):
        """For JupyterHub.template_vars: None signed out, else `jhub_notices` for templates to call."""
        if user is None:
            return None
        name = user.name

        @pass_environment
        def jhub_notices(environment):
            return self.notices(name) if environment.is_async else self.cached(name)

        return jhub_notices
