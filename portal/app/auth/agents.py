"""The GPU agents' credentials in the cluster: projected ServiceAccount tokens, checked with a TokenReview.

Each agent pod mounts a token the kubelet issues for it (audience ``PORTAL_AGENT_AUDIENCE``, bound to the
pod, rotated before it expires). The portal asks the API server about it (``POST
/apis/authentication.k8s.io/v1/tokenreviews`` with that audience; its ServiceAccount may ``create``
tokenreviews and nothing more of the kind) and accepts it only when the review says:
  - authenticated, for this audience (``status.audiences`` holds it: the reviewer is audience-aware);
  - the agents' ServiceAccount (``system:serviceaccount:<PORTAL_AGENT_SERVICE_ACCOUNT>``);
  - one node name in ``user.extra["authentication.kubernetes.io/node-name"]`` (the node of the pod the token
    is bound to, set by Kubernetes 1.30+): the only node this credential may send samples for.
The answer (accepted or refused) is kept by the token's digest for ``PORTAL_AGENT_TOKEN_CACHE_SECONDS``, and
never past the token's own expiry, so a batch every few seconds costs one review per token and bound: a
token the API server stops accepting (its pod deleted) works here at most that long. A review that could
not be made (the API server away) is not kept: the agent keeps its samples and sends them again.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from portal.app.auth.principal import Principal
from portal.app.auth.tokens import digest

log = logging.getLogger(__name__)
NODE_NAME_KEY = "authentication.kubernetes.io/node-name"
POD_NAME_KEY = "authentication.kubernetes.io/pod-name"
CACHE_SIZE = 4096  # tokens: a few per GPU node at a time (the kubelet rotates them)
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")


class AgentReviewUnavailable(Exception):
    """The API server could not review the token now (not reachable, or the portal may not ask)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A token the portal does not accept: 401 (not a valid token for us) or 403 (valid, but not an agent's)."""

    status: int
    reason: str


def _claims(token: str) -> dict | None:
    """The token's claims, read without checking the signature: only to refuse early what no review could
    accept (not for us, expired) and to keep an accepted review no longer than the token lives."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _expiry(claims: dict) -> float | None:
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


class AgentTokenReviewer:
    """``principal(token)``: the agent's Principal (bound to its node), a Refused, or AgentReviewUnavailable.
    ``review_token(token, audiences)`` makes the TokenReview and returns its ``status`` (a dict)."""

    def __init__(self, *, audience: str, service_account: str, cache_seconds: float,
                 review_token: Callable[[str, list[str]], dict], clock: Callable[[], float] = time.time) -> None:
        self.audience = audience
        self.username = f"system:serviceaccount:{service_account}"
        self.cache_seconds = cache_seconds
        self.review_token = review_token
        self.clock = clock
        self.reviews = 0  # made (not answered from the cache)
        self._cache: dict[str, tuple[float, Principal | Refused]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> Principal | Refused | None:
        """The kept answer for this token, if it is still fresh."""
        with self._lock:
            found = self._cache.get(digest(token))
        if found is not None and found[0] > self.clock():
            return found[1]
        return None

    def principal(self, token: str) -> Principal | Refused:
        found = self.cached(token)
        if found is not None:
            return found
        # What no review could accept is refused without one (and without keeping it): not a JWT, not for
        # this audience, expired. Random tokens then cost the API server nothing.
        claims = _claims(token) if _JWT.match(token) else None
        if claims is None:
            return Refused(401, "the token is not valid")
        audiences = claims.get("aud")
        if self.audience not in (audiences if isinstance(audiences, list) else [audiences]):
            return Refused(401, f"the token is not valid for the audience {self.audience!r}")
        expires = _expiry(claims)
        if expires is not None and expires <= self.clock():
            return Refused(401, "the token has expired")
        with self._lock:
            self.reviews += 1
        status = self.review_token(token, [self.audience])  # AgentReviewUnavailable: nothing is kept
        answer = self._judge(status)
        now = self.clock()
        until = now + self.cache_seconds
        if expires is not None and isinstance(answer, Principal):
            until = min(until, expires)
        with self._lock:
            if len(self._cache) >= CACHE_SIZE:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
            self._cache[digest(token)] = (until, answer)
        return answer

    def _judge(self, status: dict) -> Principal | Refused:
        if status.get("authenticated") is not True:  # false is omitted from the API server's answer
            log.info("a GPU agent token was refused by the API server: %s", status.get("error") or "not authenticated")
            return Refused(401, "the token is not valid (expired, or not issued for this portal)")
        if self.audience not in (status.get("audiences") or []):
            return Refused(401, f"the token is not valid for the audience {self.audience!r}")
        user = status.get("user") or {}
        name = user.get("username")
        if name != self.username:
            log.warning("a token of %s was sent as a GPU agent's; only %s's are accepted", name, self.username)
            return Refused(403, "only the GPU agents' ServiceAccount may send samples")
        extra = user.get("extra") or {}
        nodes = extra.get(NODE_NAME_KEY) or []
        if len(nodes) != 1 or not isinstance(nodes[0], str) or not nodes[0]:
            return Refused(403, "the token is not bound to a node (a pod's projected token, Kubernetes 1.30 or "
                                "later, is needed)")
        pods = extra.get(POD_NAME_KEY) or [""]
        return Principal(name=f"{name}@{nodes[0]}", admin=False, via="service-account", role="agent",
                         node=nodes[0], pod=pods[0] or None)


def kube_token_review(api_client_factory: Callable[[], object]) -> Callable[[str, list[str]], dict]:
    """``review_token`` through the kubernetes client (an ApiClient made on first use, then kept)."""
    made: dict[str, object] = {}
    lock = threading.Lock()

    def review(token: str, audiences: list[str]) -> dict:
        from kubernetes import client
        from urllib3.exceptions import HTTPError

        try:
            with lock:
                if "api" not in made:
                    made["api"] = client.AuthenticationV1Api(api_client_factory())
            api = made["api"]
            body = client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=audiences))
            answer = api.create_token_review(body, _request_timeout=10)
        except client.ApiException as exc:
            hint = " (the portal's ServiceAccount needs create on tokenreviews)" if exc.status == 403 else ""
            raise AgentReviewUnavailable(f"the API server answered the TokenReview with HTTP {exc.status}{hint}") \
                from None
        except (HTTPError, OSError) as exc:
            raise AgentReviewUnavailable(f"the API server did not answer the TokenReview ({type(exc).__name__})") \
                from None
        except Exception as exc:  # no kubeconfig, no in-cluster account...
            raise AgentReviewUnavailable(f"cannot make a TokenReview: {exc}") from None
        status = answer.status
        if status is None:
            return {}
        user = status.user
        return {"authenticated": status.authenticated, "audiences": list(status.audiences or []),
                "error": status.error,
                "user": {} if user is None else {"username": user.username, "uid": user.uid,
                                                 "groups": list(user.groups or []), "extra": dict(user.extra or {})}}

    return review
