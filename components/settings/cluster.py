"""Config sections for the hosts and the MicroK8s cluster: `jhub:nodes`, `jhub:ssh`, `jhub:microk8s`."""

from __future__ import annotations

import re
import socket
from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from . import validators as check
from .base import Secret, StrictModel

SSH_HOST_KEY_RE = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521"
    r"|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}$"
)


class SshFields(StrictModel):
    """Connection fields that `jhub:ssh` sets for all nodes and a node entry may override."""

    user: Optional[str] = Field(default=None, min_length=1, max_length=32)
    port: Optional[int] = Field(default=None, ge=1, le=65535)
    private_key: Optional[Secret] = None
    private_key_file: Optional[str] = None
    password: Optional[Secret] = None
    host_key: Optional[str] = None

    @field_validator("user")
    @classmethod
    def _user(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not re.match(r"^[a-z_][a-z0-9_.-]*\$?$", value):
            raise ValueError(f'must be a Unix user name, got "{value}"')
        return value

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not SSH_HOST_KEY_RE.match(value):
            raise ValueError(
                'must be a public host key such as "ssh-ed25519 AAAAC3Nz..." '
                "(see README: ssh-keyscan -t ed25519 <host>)"
            )
        return value


class SshSettings(SshFields):
    """`jhub:ssh`: how to reach every node that is not `host: local`."""

    user: str = Field(default="ubuntu", min_length=1, max_length=32)
    port: int = Field(default=22, ge=1, le=65535)
    agent_socket: Optional[str] = None
    connect_timeout: int = Field(default=15, ge=1, le=600)
    dial_attempts: int = Field(default=10, ge=1, le=1000)
    command_timeout: str = "30m"

    @field_validator("command_timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        check.duration_seconds(value, minimum=60)
        return value


class Node(SshFields):
    """One entry of `jhub:nodes`. Resources of a node are named by `name`, never by list position."""

    name: str
    host: str
    role: Literal["control-plane", "worker"] = "worker"
    labels: dict[str, str] = Field(default_factory=dict)
    address: Optional[str] = None
    interface: Optional[str] = None
    # Permission for ONE reset of a node that is half-installed or in another cluster: true, or any new
    # text (e.g. a date) to permit another one later. The host records each id it used.
    reset: Union[bool, str] = False

    @model_validator(mode="before")
    @classmethod
    def _local_name_defaults_to_hostname(cls, data: Any) -> Any:
        """`host: local` may leave out `name`: the node is then named as its kubelet registers it, by the
        whole host name (an FQDN included) in lower case. A `name` that differs from the host name is
        given to the kubelet by install.sh (--hostname-override)."""
        if isinstance(data, dict) and data.get("host") == "local" and "name" not in data:
            hostname = socket.gethostname()
            name = hostname.rstrip(".").lower()
            try:
                check.node_name(name)
            except ValueError:
                raise ValueError(
                    f'this machine\'s hostname "{hostname}" is not a valid node name; give the node a name '
                    '(name: gpu01 on this jhub:nodes entry) or rename the host (hostnamectl set-hostname)'
                ) from None
            data = {**data, "name": name}
        return data

    @property
    def reset_id(self) -> str:
        if self.reset is True:
            return "1"
        return self.reset or ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check.node_name(value)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check.host(value)

    @field_validator("address")
    @classmethod
    def _address(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else check.node_ip(value)

    @field_validator("reset")
    @classmethod
    def _reset(cls, value: Union[bool, str]) -> Union[bool, str]:
        if isinstance(value, str) and not re.match(r"^[A-Za-z0-9._-]{1,64}$", value):
            raise ValueError(f'must be true or a short id of letters, digits, ".", "_" or "-", got "{value}"')
        return value

    @field_validator("interface")
    @classmethod
    def _interface(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else check.interface(value)

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            check.label_key(key)
            check.label_value(key, value)
            if key.startswith(("kubernetes.io/", "k8s.io/")) or ".kubernetes.io/" in key:
                if not key.startswith("node-role.kubernetes.io/"):
                    raise ValueError(f'label "{key}" is in a namespace the kubelet owns; choose your own prefix')
        return dict(sorted(labels.items()))

    @property
    def is_local(self) -> bool:
        return self.host == "local"

    @property
    def is_control_plane(self) -> bool:
        return self.role == "control-plane"


KNOWN_ADDONS = (
    "cert-manager", "cis-hardening", "dashboard", "dns", "gpu", "ha-cluster", "helm", "helm3",
    "host-access", "hostpath-storage", "ingress", "kube-ovn", "mayastor", "metallb", "metrics-server",
    "minio", "nvidia", "observability", "prometheus", "rbac", "registry", "rook-ceph", "storage",
)
ADDON_RE = re.compile(r"^[a-z0-9-]+(:[A-Za-z0-9.,:=/_-]+)?$")
CHANNEL_RE = re.compile(r"^(\d+)\.(\d+)(-strict|-eksd)?/(stable|candidate|beta|edge)$")


class MicroK8sSettings(StrictModel):
    """`jhub:microk8s`: the MicroK8s channel, addons and cluster-wide host behaviour."""

    channel: str = "1.32/stable"
    addons: list[str] = Field(default_factory=lambda: ["dns", "hostpath-storage", "helm3", "rbac"])
    dns_servers: list[str] = Field(default_factory=list)
    remove_on_destroy: bool = False
    drain_timeout: str = "5m"
    wait_ready_timeout: str = "10m"
    join_timeout: str = "10m"

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        match = CHANNEL_RE.match(value)
        if not match:
            raise ValueError(
                'must be "<major>.<minor>/<risk>" such as "1.32/stable" '
                f'(a pinned track keeps every node on one version), got "{value}"'
            )
        if (int(match.group(1)), int(match.group(2))) < (1, 28):
            raise ValueError(f'must be 1.28 or newer, got "{value}"')
        return value

    @field_validator("addons")
    @classmethod
    def _addons(cls, addons: list[str]) -> list[str]:
        import difflib

        seen = set()
        for entry in addons:
            if not ADDON_RE.match(entry):
                raise ValueError(f'"{entry}" is not an addon name with optional arguments such as "metallb:10.0.0.100-10.0.0.110"')
            name = entry.split(":", 1)[0]
            if name not in KNOWN_ADDONS:
                close = difflib.get_close_matches(name, KNOWN_ADDONS, n=1)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                raise ValueError(f'unknown MicroK8s addon "{name}"{hint}')
            if name in seen:
                raise ValueError(f'addon "{name}" is listed twice')
            seen.add(name)
        return addons

    @field_validator("dns_servers")
    @classmethod
    def _dns(cls, servers: list[str]) -> list[str]:
        # CoreDNS runs in a pod: a loopback upstream (127.0.0.53, systemd-resolved) would be the pod itself.
        return [check.routable_ip(s) for s in servers]

    @field_validator("drain_timeout", "wait_ready_timeout", "join_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        check.duration_seconds(value, minimum=10)
        return value

    @model_validator(mode="after")
    def _dns_args(self) -> "MicroK8sSettings":
        if self.dns_servers and any(a.startswith("dns:") for a in self.addons):
            raise ValueError('give upstream DNS servers either in "dnsServers" or as "dns:<servers>", not both')
        for addon in self.addons:
            if addon.startswith("dns:"):
                for server in addon.split(":", 1)[1].split(","):
                    try:
                        check.routable_ip(server)
                    except ValueError as error:
                        raise ValueError(f'addon "{addon}": upstream {error}') from None
        return self

    @property
    def dns_upstreams(self) -> list[str]:
        """CoreDNS upstreams from `dnsServers` or a `dns:<ip>,<ip>` entry (hosts/addons.sh applies them
        on the first enable and patches CoreDNS when they change)."""
        for addon in self.addons:
            if addon.startswith("dns:"):
                return addon.split(":", 1)[1].split(",")
        return list(self.dns_servers)

    @property
    def addon_lines(self) -> list[str]:
        """Addons as hosts/addons.sh takes them: dns without arguments (its servers travel apart)."""
        return ["dns" if a.startswith("dns:") else a for a in self.addons]
