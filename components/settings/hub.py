"""`jhub:hub`: the JupyterHub release: namespace, NodePort, admins, images, storage, spawn options, branding.

The spawn form itself is computed in the hub pod from live node capacity (`hub/jhub_profiles.py`); the
`profiles` object here only tunes it (see README.md, "The spawn form", for the CPU/memory preset formula).
"""

from __future__ import annotations

import posixpath
from typing import Optional

from pydantic import Field, field_validator

from . import validators as check
from .base import StrictModel
from .spawn import (DEFAULT_IMAGE, EphemeralStorage, ImageChoice, NamedServers, Profiles, Scheduling, Toleration,
                    username)
from .storage import SharedStorage, UserStorage, absolute_path, quantity

class Branding(StrictModel):
    """Login page look. `logo` and `favicon` are file paths (relative to the project folder)."""

    title: str = Field(default="JupyterHub", min_length=1, max_length=120)
    logo: Optional[str] = None
    favicon: Optional[str] = None
    announcement: str = ""
    login_announcement: str = ""
    sign_in_text: str = ""


class HubSettings(StrictModel):
    namespace: str = "jhub"
    node_port: int = Field(default=30080, ge=30000, le=32767)
    public_url: Optional[str] = None
    admin_users: list[str] = Field(default_factory=list)
    images: list[ImageChoice] = Field(
        default_factory=lambda: [ImageChoice.model_validate(
            {"name": "minimal", "image": DEFAULT_IMAGE, "description": "Python and JupyterLab"})],
        min_length=1,
    )
    profiles: Profiles = Field(default_factory=Profiles)
    storage: UserStorage = Field(default_factory=UserStorage)
    shared_storage: SharedStorage = Field(default_factory=SharedStorage)
    home_dir: str = "/home/jovyan"
    user_uid: int = Field(default=1000, ge=1, le=2**31 - 1)
    user_gid: int = Field(default=100, ge=0, le=2**31 - 1)
    idle_timeout: str = "7d"
    start_timeout: str = "15m"
    shm_size: Optional[str] = None
    named_servers: NamedServers = Field(default_factory=NamedServers)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    read_only_root_filesystem: bool = False
    ephemeral_storage: EphemeralStorage = Field(default_factory=EphemeralStorage)
    allow_privilege_escalation: bool = False
    grant_sudo: bool = False
    private_network_access: bool = True
    pre_pull_images: bool = False
    scheduling: Scheduling = Field(default_factory=Scheduling)
    branding: Branding = Field(default_factory=Branding)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check.k8s_namespace(value)

    @field_validator("home_dir")
    @classmethod
    def _home(cls, value: str) -> str:
        return absolute_path(value)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: Optional[str]) -> Optional[str]:
        from .offline import URL_RE

        if value is not None and not URL_RE.match(value):
            raise ValueError(f'must be an http(s) URL such as "http://10.0.0.1:30080", got "{value}"')
        return None if value is None else value.rstrip("/")

    @field_validator("admin_users")
    @classmethod
    def _admins(cls, values: list[str]) -> list[str]:
        return sorted({username(v) for v in values})

    @field_validator("idle_timeout")
    @classmethod
    def _idle(cls, value: str) -> str:
        if value != "off":
            check.duration_seconds(value, minimum=300)
        return value

    @field_validator("start_timeout")
    @classmethod
    def _start(cls, value: str) -> str:
        check.duration_seconds(value, minimum=60)
        return value

    @field_validator("shm_size")
    @classmethod
    def _shm(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else quantity(value)

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            check.label_key(key)
            check.label_value(key, value)
        return dict(sorted(labels.items()))

    @field_validator("images")
    @classmethod
    def _one_default_image(cls, images: list[ImageChoice]) -> list[ImageChoice]:
        names = [i.name for i in images]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f'image name "{twice[0]}" is used twice')
        if sum(1 for i in images if i.default) > 1:
            raise ValueError("only one image can be the default")
        return images

    @property
    def storage_mount_path(self) -> str:
        """Where a user's own storage appears: `storage.mountPath`, by default a new `storage` folder in the
        home directory, so JupyterLab's file browser shows it and nothing the image put in home is hidden."""
        return self.storage.mount_path or posixpath.join(self.home_dir, "storage")

    @property
    def storage_in_home(self) -> Optional[str]:
        """The storage folder relative to the home directory (`storage`), or None when it is outside."""
        mount, home = self.storage_mount_path, self.home_dir.rstrip("/")
        return mount[len(home) + 1:] if mount.startswith(home + "/") else None

    @property
    def default_image(self) -> ImageChoice:
        return next((i for i in self.images if i.default), self.images[0])

    @property
    def idle_timeout_seconds(self) -> Optional[int]:
        return None if self.idle_timeout == "off" else check.duration_seconds(self.idle_timeout)
