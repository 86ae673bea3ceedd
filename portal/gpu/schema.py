"""What a node agent sends: one batch of GPU samples (``POST /api/gpu/samples``).

  {"node": "gpu01", "batch_id": "2f1c...", "dropped_samples": 0,
   "samples": [{"at": "2026-05-20T04:00:00Z", "uuid": "GPU-8c1a...", "parent_uuid": null,
                "model": "NVIDIA A100-SXM4-80GB", "util_percent": 37.0, "memory_used_bytes": 1073741824,
                "memory_total_bytes": 85899345920, "power_watts": 212.5, "temperature_c": 41.0,
                "holders": [{"namespace": "jhub", "pod": "jupyter-alice", "container": "notebook",
                             "pod_uid": null, "memory_bytes": null}]}]}

A holder is a pod (named by the kubelet's pod-resources API, or only by UID where it was found through a
process's cgroup); ``memory_bytes`` and ``util_percent`` are that pod's own where several pods share one
GPU (0 for a pod given a share that runs nothing on it). Where two holders of one sample resolve to the
same session, the one that names the pod UID (found by process) counts. ``active`` stands in for the
utilisation of a MIG slice the agent cannot read one for (portal/agent/gpm.py): false counts as idle, true as
busy; it is ignored where ``util_percent`` is given. For a GPU in MIG mode the portal derives it from the
slices sent with it for the same instant (any busy: true), so an agent sends a round in one batch.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

MAX_SAMPLES_PER_BATCH = 10_000
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class HolderIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    namespace: str | None = Field(default=None, max_length=63)
    pod: str | None = Field(default=None, max_length=253)
    container: str | None = Field(default=None, max_length=253)
    pod_uid: str | None = Field(default=None, min_length=1, max_length=64)
    memory_bytes: int | None = Field(default=None, ge=0)
    util_percent: float | None = Field(default=None, ge=0, le=100)  # the pod's own, where it differs from the GPU's

    @model_validator(mode="after")
    def _named(self) -> HolderIn:
        if self.pod_uid is None and (self.namespace is None or self.pod is None):
            raise ValueError("a holder needs pod_uid, or namespace and pod")
        return self


class SampleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    at: AwareDatetime
    uuid: str = Field(min_length=1, max_length=96, pattern=_NAME)
    parent_uuid: str | None = Field(default=None, min_length=1, max_length=96, pattern=_NAME)
    model: str = Field(default="", max_length=255)
    util_percent: float | None = Field(default=None, ge=0, le=100)
    memory_used_bytes: int = Field(ge=0)
    memory_total_bytes: int = Field(ge=0)
    power_watts: float | None = Field(default=None, ge=0)
    temperature_c: float | None = Field(default=None, ge=-100, le=200)
    active: bool | None = Field(default=None, description="only where util_percent is null (a MIG slice without "
                                "GPM): a compute process holds the slice; null: no activity reading")
    holders: list[HolderIn] = Field(default_factory=list, max_length=64)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str = Field(min_length=1, max_length=253, pattern=_NAME)
    batch_id: str = Field(min_length=1, max_length=64)
    dropped_samples: int = Field(default=0, ge=0, description="samples the agent dropped (buffer full), so far")
    samples: list[SampleIn] = Field(max_length=MAX_SAMPLES_PER_BATCH)


class BatchResult(BaseModel):
    accepted: int = Field(description="samples stored now")
    duplicates: int = Field(description="samples already stored (a retried batch); not counted again")
