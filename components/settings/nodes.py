"""Checks across the entries of `jhub:nodes` that a per-entry model cannot see."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import key_path

if TYPE_CHECKING:
    from . import Settings

_SSH_FIELDS = ("user", "port", "private_key", "private_key_file", "password", "host_key")


def _where(index: int, field: str = "") -> str:
    return key_path("nodes", (index,) + ((field,) if field else ()))


def check_nodes(settings: "Settings") -> list[str]:
    """Key files are only opened with `settings.check_files` (the bundler never connects)."""
    nodes, ssh, offline = settings.nodes, settings.ssh, settings.offline
    project_dir = settings.project_dir if settings.check_files else None
    problems: list[str] = []
    if not nodes:
        return [f"{key_path('nodes')}: must list at least one node"]

    control_planes = [i for i, n in enumerate(nodes) if n.is_control_plane]
    if not control_planes:
        problems.append(
            f'{key_path("nodes")}: exactly one node must have role "control-plane", found none'
        )
    for index in control_planes[1:]:
        first = control_planes[0]
        problems.append(
            f'{_where(index, "role")}: only one node can be "control-plane"; '
            f'{_where(first)} ("{nodes[first].name}") already is'
        )

    for field, label in (("name", "name"), ("host", "host"), ("address", "address")):
        seen: dict[str, int] = {}
        for index, node in enumerate(nodes):
            value = getattr(node, field)
            if value is None:
                continue
            if value == "local" and field == "host":
                label_text = '"host: local" can be used by one node only'
            else:
                label_text = f'{label} "{value}" is already used'
            if value in seen:
                problems.append(f"{_where(index, field)}: {label_text} ({_where(seen[value])})")
            else:
                seen[value] = index

    for index, node in enumerate(nodes):
        if node.is_local:
            for field in _SSH_FIELDS:
                if getattr(node, field) is not None:
                    alias = type(node).model_fields[field].alias
                    problems.append(f'{_where(index, alias)}: has no effect with "host: local"; remove it')
        if node.private_key is not None and node.private_key_file is not None:
            problems.append(f"{_where(index, 'privateKeyFile')}: give privateKey or privateKeyFile, not both")
        key_file = node.private_key_file
        if key_file is not None and not _readable(project_dir, key_file):
            problems.append(f'{_where(index, "privateKeyFile")}: file "{key_file}" does not exist or is not readable')

    if offline.registry_ca_file and not _readable(project_dir, offline.registry_ca_file):
        problems.append(f'{key_path("offline", ("registryCaFile",))}: file "{offline.registry_ca_file}" '
                        "does not exist or is not readable")
    if ssh.private_key is not None and ssh.private_key_file is not None:
        problems.append(f"{key_path('ssh', ('privateKeyFile',))}: give privateKey or privateKeyFile, not both")
    if ssh.private_key_file is not None and not _readable(project_dir, ssh.private_key_file):
        problems.append(
            f'{key_path("ssh", ("privateKeyFile",))}: file "{ssh.private_key_file}" does not exist or is not readable'
        )

    if control_planes:
        index = control_planes[0]
        cp = nodes[index]
        if not cp.is_local and cp.address is None and not _is_ip(cp.host):
            problems.append(
                f'{_where(index, "address")}: is required when the control plane\'s host is a DNS name '
                f'("{cp.host}"): workers join it, and the API certificate is valid, by IP address'
            )
    if control_planes and len(nodes) > 1:
        index = control_planes[0]
        cp = nodes[index]
        if cp.is_local and cp.address is None:
            problems.append(
                f'{_where(index, "address")}: is required when the control plane is "host: local" '
                "and there are workers: they join it at this address"
            )
    return problems


def _is_ip(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _readable(project_dir: Path | None, path: str) -> bool:
    if project_dir is None:
        return True
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = project_dir / resolved
    try:
        with open(resolved, "rb"):
            return True
    except OSError:
        return False
