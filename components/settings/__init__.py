"""Typed stack config: every `jhub:*` key parsed once, validated, before any resource is registered.

`load_settings()` reads the whole `jhub` namespace, refuses unknown keys, parses each section with its
model into one typed field of `Settings`, then runs the one list of checks that span entries and sections
(`checks.CHECKS`). Any problem raises `ConfigError` with one line per problem, each naming the key path.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pulumi
from pydantic import BaseModel, SecretStr

from .base import NAMESPACE, ConfigError, key_path, parse
from .auth import AuthSettings
from .checks import CHECKS
from .cluster import MicroK8sSettings, Node, SshSettings
from .gpu import GpuSettings
from .hub import HubSettings
from .infiniband import InfinibandSettings
from .mpi import MpiSettings
from .offline import OfflineSettings
from .portal import PortalSettings
from .tls import TlsSettings

PROJECT_DIR = Path(__file__).resolve().parents[2]

# `jhub:<key>` -> (model, default when the key is absent); each key is the `Settings` field of that name.
SECTIONS: dict[str, tuple[Any, Any]] = {
    "nodes": (list[Node], None),
    "ssh": (SshSettings, {}),
    "microk8s": (MicroK8sSettings, {}),
    "offline": (OfflineSettings, {}),
    "hub": (HubSettings, {}),
    "auth": (AuthSettings, {}),
    "tls": (TlsSettings, {}),
    "portal": (PortalSettings, {}),
    "gpu": (GpuSettings, {}),
    "infiniband": (InfinibandSettings, {}),
    "mpi": (MpiSettings, {}),
}


@dataclass(frozen=True)
class Settings:
    """The whole stack config, one typed field per `jhub:*` key."""

    stack: str
    project_dir: Path
    nodes: tuple[Node, ...]
    ssh: SshSettings
    microk8s: MicroK8sSettings
    offline: OfflineSettings
    hub: HubSettings
    auth: AuthSettings
    tls: TlsSettings
    portal: PortalSettings
    gpu: GpuSettings
    infiniband: InfinibandSettings
    mpi: MpiSettings
    # False for tools that never deploy (the bundler): files named in the config are not opened.
    check_files: bool = True

    @property
    def control_plane(self) -> Node:
        return next(n for n in self.nodes if n.is_control_plane)

    @property
    def workers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if not n.is_control_plane)

    @property
    def cluster_id(self) -> str:
        """Marks a node as ours: a node joined to another jhub stack is never taken over silently."""
        return f"jhub-{self.stack}-{self.control_plane.name}"


class ConfigSource:
    """Reads raw `jhub:*` values; the Pulumi runtime in programs, a plain dict in unit tests."""

    def __init__(self, values: Optional[dict[str, str]] = None, secret_keys: Optional[set[str]] = None):
        self._values = values
        self._secret_keys = secret_keys

    def keys(self) -> list[str]:
        if self._values is not None:
            names = self._values.keys()
        else:
            names = set(pulumi.runtime.config.CONFIG.get()) | set(pulumi.runtime.config.get_config_env())
        prefix = f"{NAMESPACE}:"
        return sorted(k[len(prefix):] for k in names if k.startswith(prefix))

    def raw(self, key: str) -> Optional[str]:
        full = f"{NAMESPACE}:{key}"
        if self._values is not None:
            return self._values.get(full)
        return pulumi.runtime.config.get_config(full)

    def is_secret(self, key: str) -> bool:
        full = f"{NAMESPACE}:{key}"
        if self._secret_keys is not None:
            return full in self._secret_keys
        return pulumi.runtime.config.is_config_secret(full)


def _decode(key: str, raw: Optional[str], default: Any) -> Any:
    if raw is None:
        if default is None:
            raise ConfigError([f"{key_path(key)}: is required (see Pulumi.dev.yaml for an example)"])
        return default
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            [f"{key_path(key)}: must be a YAML/JSON object or list, got the plain string {raw[:40]!r}"]
        ) from None


def _secret_fields(value: Any, loc: tuple = ()) -> list[tuple]:
    """Locations of every secret field that is set, inside models, lists and dicts."""
    found: list[tuple] = []
    if isinstance(value, SecretStr):
        found.append(loc)
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            found += _secret_fields(getattr(value, name), loc + (field.alias or name,))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found += _secret_fields(item, loc + (index,))
    elif isinstance(value, dict):
        for k, item in value.items():
            found += _secret_fields(item, loc + (k,))
    return found


def _check_secrets_are_secret(source: ConfigSource, key: str, value: Any) -> list[str]:
    if source.is_secret(key):
        return []
    return [
        f"{key_path(key, loc)}: is a secret; set it with "
        f"pulumi config set --secret --path '{key_path(key, loc)}' <value>"
        for loc in _secret_fields(value)
    ]


def load_settings(
    source: Optional[ConfigSource] = None,
    *,
    stack: Optional[str] = None,
    project_dir: Path = PROJECT_DIR,
    check_files: bool = True,
    secrets_known: bool = True,
) -> Settings:
    source = source or ConfigSource()
    problems: list[str] = []
    for key in source.keys():
        if key not in SECTIONS:
            close = difflib.get_close_matches(key, SECTIONS, n=1)
            hint = f' (did you mean "{key_path(close[0])}"?)' if close else ""
            problems.append(f"{key_path(key)}: unknown config key{hint}; known keys: "
                            + ", ".join(key_path(k) for k in SECTIONS))
    parsed: dict[str, Any] = {}
    for key, (model, default) in SECTIONS.items():
        try:
            parsed[key] = parse(model, key, _decode(key, source.raw(key), default),
                                context={"secrets_known": secrets_known})
        except ConfigError as error:
            problems += error.problems
            continue
        problems += _check_secrets_are_secret(source, key, parsed[key])
    if problems:
        raise ConfigError(problems)
    settings = Settings(
        stack=stack or pulumi.get_stack(),
        project_dir=project_dir,
        **{key: tuple(value) if key == "nodes" else value for key, value in parsed.items()},
        check_files=check_files,
    )
    problems = [p for check in CHECKS for p in check(settings)]
    if problems:
        raise ConfigError(problems)
    return settings


__all__ = ["ConfigError", "ConfigSource", "Settings", "load_settings", "PROJECT_DIR"]
