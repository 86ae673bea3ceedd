"""Domain errors of the use-cases, each with the HTTP status it means. Services raise these, never
HTTPException; portal.app.errors maps them to a response once (JSON for the API, a page for browsers)."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, *, status: int | None = None, loc: Sequence[str | int] = ()) -> None:
        super().__init__(message)
        self.reason = message
        self.loc = tuple(loc)  # where in the request the problem is (422 bodies name it)
        if status is not None:
            self.status = status


class Invalid(DomainError):
    """The request asks for something that cannot be (a bad range, a price change in the past)."""

    status = 422


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class KubeUnavailable(Exception):
    """The Kubernetes API cannot be used (not configured, unreachable, or it refused the portal)."""
