"""The portal's environment, from the stack settings (names: portal/settings.py and portal/app/settings.py).

Plain values go into the Deployment; the secret ones (`SECRET_KEYS`) into the portal's Secret, read by
reference. `api_tokens` builds PORTAL_API_TOKENS: only SHA-256 digests of the tokens, never the tokens.
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional

from ..jupyterhub.custom_values import PORTAL_SERVICE
from ..settings import Settings
from . import images as im

SECRET_KEYS = ("PORTAL_API_TOKENS", "PORTAL_DATABASE_URL", "PORTAL_OAUTH_CLIENT_SECRET", "PORTAL_SESSION_SECRET")
# Token names in PORTAL_API_TOKENS and their roles. No agent-role token: in the cluster the GPU agents use
# their projected ServiceAccount tokens, each bound to its node (PORTAL_AGENT_AUTH=kubernetes refuses the
# unbound agent-role tokens).
ADMIN, HUB = "admin", "hub"


def _number(value: float) -> str:
    return repr(float(value))


def user_namespaces(settings: Settings) -> bool:
    """Per-user namespaces exist when the MPI feature makes them."""
    return bool(getattr(settings.mpi, "enabled", False))


def storage_host_path(settings: Settings) -> Optional[str]:
    storage = settings.hub.storage
    return storage.host_path if storage.type == "shared-hostpath" else None


def plain_env(settings: Settings, *, hub_url: str, public_url: str) -> dict[str, str]:
    """Every non-secret PORTAL_* variable the deployed portal needs, sorted."""
    portal, hub = settings.portal, settings.hub
    rates = portal.rates
    env = {
        "PORTAL_HOST": "0.0.0.0",
        "PORTAL_PORT": str(im.PORT),
        "PORTAL_LOG_FORMAT": "json",
        "PORTAL_AUTO_MIGRATE": "false",  # the `migrate` init container did it, before this container starts
        "PORTAL_COLLECTOR_ENABLED": "true",
        "PORTAL_KUBE_CONFIG_MODE": "in-cluster",
        "PORTAL_TIMEZONE": portal.timezone,
        "PORTAL_HUB_NAMESPACE": hub.namespace,
        "PORTAL_GPU_RATE_PER_HOUR": _number(rates.gpu_hour),
        "PORTAL_CPU_RATE_PER_CORE_HOUR": _number(rates.cpu_hour),
        "PORTAL_MEMORY_RATE_PER_GIB_HOUR": _number(rates.memory_gib_hour),
        # Sign-in through the hub: the API in the cluster, the authorize page where browsers reach the hub.
        "PORTAL_HUB_API_URL": f"http://hub.{hub.namespace}.svc:{im.HUB_API_PORT}/hub/api",
        "PORTAL_HUB_PUBLIC_URL": hub_url,
        "PORTAL_OAUTH_CLIENT_ID": PORTAL_SERVICE["oauthClientId"],
        "PORTAL_OAUTH_CALLBACK_URL": f"{public_url}/oauth_callback",
        "PORTAL_SERVICE_NAME": PORTAL_SERVICE["name"],
        # GPU agents: their ServiceAccount tokens, reviewed by the API server, each for its own node only
        "PORTAL_AGENT_AUTH": "kubernetes",
        "PORTAL_AGENT_AUDIENCE": im.AGENT_TOKEN_AUDIENCE,
        "PORTAL_AGENT_SERVICE_ACCOUNT": f"{hub.namespace}:{im.AGENT}",
        # GPU utilisation: when a session counts idle, how long raw samples stay, idle-GPU reclaim
        "PORTAL_GPU_IDLE_THRESHOLD_PERCENT": _number(portal.gpu.idle_threshold_percent),
        "PORTAL_GPU_IDLE_PERIOD_SECONDS": _number(portal.gpu.idle_period_seconds),
        "PORTAL_GPU_SAMPLE_RETENTION_DAYS": _number(portal.gpu.sample_retention_days),
        "PORTAL_GPU_RECLAIM_ENABLED": "true" if portal.gpu.reclaim else "false",
        "PORTAL_GPU_RECLAIM_WARNING_SECONDS": _number(portal.gpu.reclaim_warning_seconds),
    }
    if hub.storage.size:
        env["PORTAL_USER_STORAGE_SIZE"] = hub.storage.size
    if storage_host_path(settings):
        env["PORTAL_STORAGE_BASE_PATH"] = im.STORAGE_MOUNT
    if user_namespaces(settings):
        # Users' MPIJob pods live in their own namespaces and carry the user's label (the MPI admission
        # policy makes sure), as KubeSpawner's notebook pods do: both are billed to the user.
        env["PORTAL_USER_NAMESPACE_LABEL"] = im.USER_NAMESPACE_LABEL
        env["PORTAL_POD_LABEL_SELECTOR"] = "hub.jupyter.org/username"
    return dict(sorted(env.items()))


def secret_aliases(settings: Settings) -> tuple[tuple[str, str], ...]:
    """(variable, key of the portal's Secret) for variables that read a key under another name.

    With idle-GPU reclaim the portal stops servers through the hub API with its own service token (the OAuth
    client secret, to which the hub grants the `servers` scope then): no second token exists."""
    if settings.portal.gpu.reclaim:
        return (("PORTAL_GPU_RECLAIM_HUB_TOKEN", "PORTAL_OAUTH_CLIENT_SECRET"),)
    return ()


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_tokens(tokens: dict[str, str]) -> str:
    """PORTAL_API_TOKENS from {name: token}; the role is the name (admin, hub)."""
    return json.dumps({name: {"role": name, "sha256": digest(token)} for name, token in tokens.items()},
                      sort_keys=True)


def secret_env(*, database_url: str, oauth_client_secret: str, session_secret: str,
               tokens: dict[str, str]) -> dict[str, str]:
    return {"PORTAL_API_TOKENS": api_tokens(tokens), "PORTAL_DATABASE_URL": database_url,
            "PORTAL_OAUTH_CLIENT_SECRET": oauth_client_secret, "PORTAL_SESSION_SECRET": session_secret}
