"""`jhub:hub.storage` and `jhub:hub.sharedStorage`: where users' files live.

Per-user storage must follow the user to any node: `shared-hostpath` (a directory per user under a path
that every node mounts, such as CephFS or NFS) and `nfs` do; `local` (dynamic PVCs on the hostpath-storage
addon) keeps files on one node's disk, so it is refused for multi-node configs (see `hub_checks.py`).
"""

from __future__ import annotations

import posixpath
import re
from typing import Literal, Optional

from pydantic import Field, ValidationInfo, field_validator

from . import validators as check
from .base import StrictModel

QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|K|M|G|T|P)?$")
DNS_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def quantity(value: str) -> str:
    if not QUANTITY_RE.match(value):
        raise ValueError(f'must be a Kubernetes quantity such as "128Gi", got "{value}"')
    return value


def absolute_path(value: str) -> str:
    if not value.startswith("/") or "\x00" in value:
        raise ValueError(f'must be an absolute path, got "{value}"')
    normal = posixpath.normpath(value)
    if normal == "/":
        raise ValueError('must not be "/"')
    if ".." in value.split("/"):
        raise ValueError(f'must not contain "..", got "{value}"')
    return normal


def nfs_server(value: str) -> str:
    try:
        return check.ip_address(value)
    except ValueError:
        pass
    if not DNS_NAME_RE.match(value.lower()):
        raise ValueError(f'must be an IP address or a DNS name, got "{value}"')
    return value.lower()


def used_by(info: ValidationInfo, value, types: tuple[str, ...], *, required: bool = False):
    """A field that only some storage types use: required for them, refused for the others."""
    kind = info.data.get("type")
    if kind is None:  # the type itself is wrong; that is reported on its own line
        return value
    if kind in types and required and value is None:
        raise ValueError(f'is required with type "{kind}"')
    if kind not in types and value is not None:
        wanted = " or ".join(f'"{t}"' for t in types)
        raise ValueError(f'is only used with type {wanted}, not "{kind}"; remove it')
    return value


class UserStorage(StrictModel):
    """Per-user storage. `shared-hostpath`: a directory per user under `hostPath`, which every node mounts
    (CephFS, NFS, ...). `nfs`: a directory per user under `path` on `server`, mounted by kubelet. `local`:
    a PVC per user of `size` on one node's disk (MicroK8s hostpath-storage), for one-node clusters."""

    type: Literal["shared-hostpath", "nfs", "local"] = "local"
    host_path: Optional[str] = Field(None, validate_default=True)
    server: Optional[str] = Field(None, validate_default=True)
    path: Optional[str] = Field(None, validate_default=True)
    size: Optional[str] = Field(None, validate_default=True)
    storage_class: Optional[str] = Field(None, validate_default=True)
    mount_path: Optional[str] = None  # default: <jhub:hub.homeDir>/storage (HubSettings.storage_mount_path)

    @field_validator("host_path")
    @classmethod
    def _host_path(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        value = used_by(info, value, ("shared-hostpath",), required=True)
        return None if value is None else absolute_path(value)

    @field_validator("server")
    @classmethod
    def _server(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        value = used_by(info, value, ("nfs",), required=True)
        return None if value is None else nfs_server(value)

    @field_validator("path")
    @classmethod
    def _path(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        value = used_by(info, value, ("nfs",), required=True)
        return value if value in (None, "/") else absolute_path(value)

    @field_validator("size")
    @classmethod
    def _size(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        # On shared-hostpath and nfs a directory has no quota: size is accepted as documentation only.
        if value is None and info.data.get("type") == "local":
            value = "10Gi"
        return None if value is None else quantity(value)

    @field_validator("storage_class")
    @classmethod
    def _storage_class(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        value = used_by(info, value, ("local",))
        if value is None and info.data.get("type") == "local":
            value = "microk8s-hostpath"
        return None if value is None else check.k8s_namespace(value)

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else absolute_path(value)

    @property
    def follows_user(self) -> bool:
        """True when a user's files are reachable from every node."""
        return self.type != "local"


class SharedStorage(StrictModel):
    """One extra volume mounted into every user pod (datasets, shared code), optionally read-only."""

    enabled: bool = False
    type: Literal["hostpath", "nfs"] = "hostpath"
    host_path: Optional[str] = Field(None, validate_default=True)
    server: Optional[str] = Field(None, validate_default=True)
    path: Optional[str] = Field(None, validate_default=True)
    mount_path: str = "/workspace/shared"
    read_only: bool = False

    @field_validator("host_path")
    @classmethod
    def _host_path(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        value = used_by(info, value, ("hostpath",), required=info.data.get("enabled", False))
        return None if value is None else absolute_path(value)

    @field_validator("server")
    @classmethod
    def _server(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        value = used_by(info, value, ("nfs",), required=info.data.get("enabled", False))
        return None if value is None else nfs_server(value)

    @field_validator("path")
    @classmethod
    def _path(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        value = used_by(info, value, ("nfs",), required=info.data.get("enabled", False))
        return value if value in (None, "/") else absolute_path(value)

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: str) -> str:
        return absolute_path(value)
