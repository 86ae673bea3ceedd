"""The agent's settings, from its environment (see portal/agent/__init__.py for the list)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from portal.agent.podresources import DEFAULT_SOCKET
from portal.agent.sender import token_file


class AgentSettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class AgentSettings:
    portal_url: str
    token: str
    node_name: str
    interval_seconds: float = 10.0
    buffer_max_samples: int = 50_000
    batch_max_samples: int = 2_000
    pod_resources_socket: str = DEFAULT_SOCKET
    resource_prefix: str = "nvidia.com/"
    proc_root: Path = Path("/proc")
    http_timeout_seconds: float = 10.0
    token_file: Path | None = None  # PORTAL_AGENT_TOKEN_FILE: read again for every request (token: its first read)
    mig_active_memory_mib: int = 0  # MIG slices without GPM: active above this much process memory (gpm.py)

    def credential(self) -> str | Callable[[], str]:
        """What the sender authenticates with: the token file (re-read each time), else the token."""
        return token_file(self.token_file) if self.token_file is not None else self.token

    def __repr__(self) -> str:  # never the token
        return f"AgentSettings(portal_url={self.portal_url!r}, node_name={self.node_name!r}, ...)"


def _number(env, name: str, default, kind, minimum):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise AgentSettingsError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise AgentSettingsError(f"{name} must be at least {minimum}")
    return value


def load_agent_settings(env: dict[str, str] | None = None) -> AgentSettings:
    env = dict(os.environ if env is None else env)
    problems = []
    url = env.get("PORTAL_URL", "").strip().rstrip("/")
    parts = urlsplit(url)
    if not url:
        problems.append("PORTAL_URL is not set (e.g. http://portal.jhub.svc:29781)")
    elif parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append("PORTAL_URL must be an http(s) URL")
    node = env.get("NODE_NAME", "").strip()
    if not node:
        problems.append("NODE_NAME is not set (the DaemonSet sets it from spec.nodeName)")
    token, token_file = env.get("PORTAL_AGENT_TOKEN", "").strip(), env.get("PORTAL_AGENT_TOKEN_FILE", "").strip()
    if token and token_file:
        problems.append("set PORTAL_AGENT_TOKEN or PORTAL_AGENT_TOKEN_FILE, not both")
    elif token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            problems.append(f"cannot read PORTAL_AGENT_TOKEN_FILE {token_file!r}: {exc.strerror}")
        else:
            if not token:
                problems.append(f"PORTAL_AGENT_TOKEN_FILE {token_file!r} is empty")
    elif not token:
        problems.append("PORTAL_AGENT_TOKEN_FILE (in the cluster: the projected ServiceAccount token) or "
                        "PORTAL_AGENT_TOKEN (an agent-role portal API token, for a trial) is not set")
    try:
        numbers = {
            "interval_seconds": _number(env, "AGENT_INTERVAL_SECONDS", 10.0, float, 1),
            "buffer_max_samples": _number(env, "AGENT_BUFFER_MAX_SAMPLES", 50_000, int, 1),
            "batch_max_samples": _number(env, "AGENT_BATCH_MAX_SAMPLES", 2_000, int, 1),
            "http_timeout_seconds": _number(env, "AGENT_HTTP_TIMEOUT_SECONDS", 10.0, float, 1),
            "mig_active_memory_mib": _number(env, "AGENT_MIG_ACTIVE_MEMORY_MIB", 0, int, 0),
        }
    except AgentSettingsError as exc:
        problems.append(str(exc))
        numbers = {}
    if numbers.get("batch_max_samples", 0) > 10_000:
        problems.append("AGENT_BATCH_MAX_SAMPLES must be at most 10000 (the portal's batch limit)")
    if problems:
        raise AgentSettingsError("invalid GPU agent settings: " + "; ".join(problems))
    return AgentSettings(
        portal_url=url, token=token, node_name=node, **numbers, token_file=Path(token_file) if token_file else None,
        pod_resources_socket=env.get("KUBELET_POD_RESOURCES_SOCKET", "").strip() or DEFAULT_SOCKET,
        resource_prefix=env.get("AGENT_GPU_RESOURCE_PREFIX", "").strip() or "nvidia.com/",
        proc_root=Path(env.get("AGENT_PROC_ROOT", "").strip() or "/proc"))
