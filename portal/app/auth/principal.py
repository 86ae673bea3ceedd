"""The identity behind a request. It only ever comes from a signed session or a verified token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Via = Literal["session", "api-token", "hub-token", "service-account"]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str  # the JupyterHub user name, or "token:<name>" for a configured API token
    admin: bool
    via: Via
    role: Literal["user", "admin", "hub", "agent"] = "user"  # "hub": the hub's (limits, notices); "agent": GPU samples
    session_id: str | None = None  # browser sessions only; the CSRF token is derived from it
    # GPU agents with a ServiceAccount token: the one node they may send samples for (None: an agent-role API
    # token, bound to no node, accepted only with PORTAL_AGENT_AUTH=api-token), and their pod
    node: str | None = None
    pod: str | None = None

    @property
    def is_user(self) -> bool:
        """A real hub user (who may own sessions), not a service token."""
        return self.via in ("session", "hub-token")

    def may_see(self, user_name: str) -> bool:
        return self.admin or (self.is_user and self.name == user_name)
