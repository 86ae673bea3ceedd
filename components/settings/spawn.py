"""Spawn options of `jhub:hub`: the image list, spawn-form tuning, user-pod placement and limits."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator

from . import validators as check
from .base import StrictModel
from .image_refs import check_image
from .storage import quantity

USERNAME_RE = re.compile(r"^[^\s/:]{1,255}$")
IMAGE_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
DEFAULT_IMAGE = "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"


def username(value: str) -> str:
    """A user name as JupyterHub keeps it: normalized to lowercase (its Authenticator.normalize_username), so
    `Alice.Smith` in the config is the account `alice.smith` that signs in."""
    if not USERNAME_RE.match(value):
        raise ValueError(f'"{value}" is not a username (no spaces, "/" or ":")')
    return value.lower()


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
    cpu_presets: Optional[list[CpuPreset]] = None  # None: the hub's defaults; []: no CPU-only servers
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
