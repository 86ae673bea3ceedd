"""`jhub:gpu`: the NVIDIA GPU Operator, its driver mode, and GPU sharing (MIG, time-slicing) per node pool.

A pool is the set of `jhub:nodes` whose labels match its `nodeSelector`; checks across sections (a selector
that matches no node, a node in two pools) live in `gpu_checks.py`.
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from .base import StrictModel

# MIG profiles per GPU model (NVIDIA's MIG user guide), the slices the MIG manager's hardware-generated config
# names `all-<profile>`. A layout outside this table is refused: the MIG manager would leave the node unset.
MIG_PROFILES: dict[str, tuple[str, ...]] = {
    "A30-24GB": ("1g.6gb", "1g.6gb+me", "2g.12gb", "2g.12gb+me", "4g.24gb"),
    "A100-40GB": ("1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
    "A100-80GB/H100-80GB/H800-80GB": ("1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb",
                                      "7g.80gb"),
    "H100-94GB/H100-96GB": ("1g.12gb", "1g.12gb+me", "1g.24gb", "2g.24gb", "3g.47gb", "4g.47gb", "7g.94gb",
                            "3g.48gb", "4g.48gb", "7g.96gb"),
    "H200-141GB": ("1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
    "B200-180GB": ("1g.23gb", "1g.23gb+me", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb"),
}
KNOWN_PROFILES = tuple(sorted({p for profiles in MIG_PROFILES.values() for p in profiles}))
# Layouts the MIG manager generates for every MIG-capable GPU besides `all-<profile>`.
NAMED_LAYOUTS = ("all-disabled", "all-enabled", "all-balanced")
KNOWN_LAYOUTS = NAMED_LAYOUTS + tuple(f"all-{p}" for p in KNOWN_PROFILES)

# A pool's name becomes a device plugin config key and a label value.
POOL_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Label keys the GPU feature sets itself on a pool's nodes: a selector on them would chase its own tail.
OWN_LABELS = ("nvidia.com/mig.config", "nvidia.com/device-plugin.config", "nvidia.com/gpu.deploy.driver")


class MigSettings(StrictModel):
    """MIG on a pool: the strategy the device plugin advertises slices with, and the layout applied."""

    # single: every GPU of a node cut the same way, slices advertised as nvidia.com/gpu;
    # mixed: slices advertised by profile, e.g. nvidia.com/mig-1g.10gb.
    strategy: Literal["single", "mixed"] = "single"
    layout: str

    @field_validator("layout")
    @classmethod
    def _layout(cls, value: str) -> str:
        if value in KNOWN_LAYOUTS:
            return value
        profile = value[len("all-"):] if value.startswith("all-") else value
        if profile in KNOWN_PROFILES:  # "1g.10gb" written without "all-"
            raise ValueError(f'unknown MIG layout "{value}"; did you mean "all-{profile}"?')
        per_model = "; ".join(f"{model}: {', '.join(p)}" for model, p in MIG_PROFILES.items())
        raise ValueError(
            f'unknown MIG layout "{value}": use one the MIG manager generates, '
            f"{', '.join(NAMED_LAYOUTS)} or all-<profile> with a profile of the pool's GPUs ({per_model})")

    @model_validator(mode="after")
    def _single_needs_one_profile(self) -> "MigSettings":
        if self.strategy == "single" and self.layout == "all-balanced":
            raise ValueError('layout "all-balanced" cuts each GPU into slices of several sizes, which strategy '
                             '"single" cannot advertise; use strategy "mixed", or an all-<profile> layout')
        return self


class TimeSlicingSettings(StrictModel):
    """Time-slicing on a pool: each GPU advertised `replicas` times, shared in time by their pods."""

    replicas: int
    # true: the shared GPUs are advertised as nvidia.com/gpu.shared, so a request for a whole GPU never
    # lands on a shared one by accident.
    rename_by_default: bool = False

    @field_validator("replicas")
    @classmethod
    def _replicas(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be at least 1 (1 means no sharing), got {value}")
        if value > 64:
            raise ValueError(f"must be at most 64 (more slices than this starve every user), got {value}")
        return value


class GpuPool(StrictModel):
    """GPU sharing for the nodes whose `jhub:nodes[].labels` match `nodeSelector`."""

    name: str
    node_selector: dict[str, str]
    mig: Optional[MigSettings] = None
    time_slicing: Optional[TimeSlicingSettings] = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value == "default":
            raise ValueError('"default" is the device plugin config of nodes in no pool; choose another name')
        if not POOL_NAME_RE.match(value):
            raise ValueError(f'"{value}" must be 1-63 lowercase letters, digits or "-", starting and ending '
                             "with a letter or digit (it becomes a label value)")
        return value

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("must name at least one node label, e.g. {jhub.io/pool: a100}")
        own = sorted(set(value) & set(OWN_LABELS))
        if own:
            raise ValueError(f'"{own[0]}" is a label jhub sets on the pool\'s nodes itself; select the pool '
                             "by a label of jhub:nodes[].labels")
        return dict(sorted(value.items()))

    @model_validator(mode="after")
    def _one_way_of_sharing(self) -> "GpuPool":
        if self.mig is not None and self.time_slicing is not None:
            raise ValueError(f'pool "{self.name}" sets both mig and timeSlicing: a pool shares its GPUs one '
                             "way; split the nodes into two pools")
        return self

    @property
    def sharing(self) -> str:
        return "mig" if self.mig else "time-slicing" if self.time_slicing else "whole"


class GpuSettings(StrictModel):
    operator: bool = False
    # host: the preinstalled driver on every GPU node; operator: driver containers for every GPU node;
    # auto: driver containers except on nodes whose facts show a loaded NVIDIA driver.
    driver: Literal["auto", "host", "operator"] = "auto"
    dcgm_exporter: bool = True
    pools: list[GpuPool] = Field(default_factory=list)
    # Seconds the CUDA smoke test may take, operator readiness included (first start pulls images).
    smoke_test_timeout: int = 1800

    @field_validator("smoke_test_timeout")
    @classmethod
    def _timeout(cls, value: int) -> int:
        if not 60 <= value <= 7200:
            raise ValueError(f"must be 60 to 7200 seconds, got {value}")
        return value

    @property
    def uses_mig(self) -> bool:
        return any(pool.mig for pool in self.pools)
