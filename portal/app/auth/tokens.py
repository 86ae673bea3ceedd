"""Configured API tokens, kept only as SHA-256 digests and compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from portal.app.auth.principal import Principal
from portal.app.settings import TokenSpec


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenStore:
    specs: dict[str, TokenSpec]

    def lookup(self, token: str) -> Principal | None:
        """The principal of a configured token, or None. Every digest is compared (no early exit)."""
        presented = digest(token).encode()
        found: tuple[str, TokenSpec] | None = None
        for name, spec in self.specs.items():
            if hmac.compare_digest(presented, spec.sha256.encode()) and found is None:
                found = (name, spec)
        if found is None:
            return None
        name, spec = found
        return Principal(name=f"token:{name}", admin=spec.role == "admin", via="api-token", role=spec.role)
