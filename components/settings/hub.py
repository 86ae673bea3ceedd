"""`jhub:hub`: the JupyterHub release: namespace, NodePort, admins, images, storage, spawn options, branding.

The spawn form itself is computed in the hub pod from live node capacity (`hub/jhub_profiles.py`); the
`profiles` object here only tunes it (see docs/jupyterhub.md for the CPU/memory preset formula).
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator

from . import validators as check
from .base import StrictModel
from .image_refs import check_image
from .storage import SharedStorage, UserStorage, quantity

USERNAME_RE = re.compile(r"^[^\s/:]{1,255}$")
IMAGE_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
DEFAULT_IMAGE = "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"


def username(value: str) -> str:
    if not USERNAME_RE.match(value):
        raise ValueError(f'"{value}" is not a username (no spaces, "/" or ":")')
    return value


class ImageChoice(StrictModel):
    """One entry of the spawn form's image list."""

    name: str
    image: str
    description: str = ""
    default: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not IMAGE_NAME_RE.match(value):
            raise ValueError(f'must be a short lowercase id such as "pytorch", got "{value}"')
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return check_image(value)


class CpuPreset(StrictModel):
    cpu: float = Field(gt=0)
    memory_gib: float = Field(gt=0, alias="memoryGiB")


class Reserve(StrictModel):
    """What each node keeps for the system before its capacity is offered to users."""

    cpu: float = Field(default=1, ge=0)
    memory_gib: float = Field(default=4, ge=0, alias="memoryGiB")


class Profiles(StrictModel):
    """Tuning of the spawn form that the hub computes from live node capacity."""

    gpu_resource: str = "nvidia.com/gpu"
    gpu_product_label: str = "nvidia.com/gpu.product"
    reserve: Reserve = Field(default_factory=Reserve)
    cpu_presets: Optional[list[CpuPreset]] = Field(default=None, min_length=1)
    max_gpus_per_server: int = Field(default=0, ge=0)  # 0: as many as one node has
    node_choice: bool = False

    @field_validator("gpu_resource", "gpu_product_label")
    @classmethod
    def _names(cls, value: str) -> str:
        return check.label_key(value)


class Toleration(StrictModel):
    key: str = ""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""
    toleration_seconds: Optional[int] = Field(default=None, ge=0)


class NamedServers(StrictModel):
    enabled: bool = False
    limit: int = Field(default=3, ge=1, le=100)


class EphemeralStorage(StrictModel):
    """Container scratch space (writable layer, logs, emptyDirs): a limit stops one user filling a node's disk."""

    request: Optional[str] = None
    limit: Optional[str] = None

    @field_validator("request", "limit")
    @classmethod
    def _quantity(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else quantity(value)


class Scheduling(StrictModel):
    """`packGpuPods`: the chart's user scheduler places user pods on the busiest node that fits
    (MostAllocated, GPUs weighted `gpuWeight` times CPU and memory), so whole nodes stay free for big jobs."""

    pack_gpu_pods: bool = False
    gpu_weight: int = Field(default=10, ge=1, le=100)
    replicas: int = Field(default=1, ge=1, le=3)


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
    def default_image(self) -> ImageChoice:
        return next((i for i in self.images if i.default), self.images[0])

    @property
    def idle_timeout_seconds(self) -> Optional[int]:
        return None if self.idle_timeout == "off" else check.duration_seconds(self.idle_timeout)
