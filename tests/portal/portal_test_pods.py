"""Recorded JupyterHub user pods (tests/portal/data/singleuser_pod.json) and variations of them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

_TEMPLATE = json.loads((Path(__file__).parent / "data" / "singleuser_pod.json").read_text())


def user_pod(
    user: str = "alice",
    *,
    uid: str | None = None,
    namespace: str = "jhub",
    started: str | None = "2025-03-01T02:00:00Z",
    finished: str | None = None,
    phase: str | None = None,
    deletion: str | None = None,
    resource_version: str = "1001",
    gpus: int = 1,
    cpu: str = "4",
    memory: str = "16Gi",
    ephemeral_storage: str | None = None,
    claim: bool = True,
) -> dict:
    """A singleuser pod as the API returns it; ``started=None`` is a pod still pulling its image."""
    pod = copy.deepcopy(_TEMPLATE)
    meta, spec, status = pod["metadata"], pod["spec"], pod["status"]
    meta["name"] = f"jupyter-{user}"
    meta["namespace"] = namespace
    meta["uid"] = uid or f"uid-{user}"
    meta["resourceVersion"] = resource_version
    meta["labels"]["hub.jupyter.org/username"] = user
    meta["annotations"]["hub.jupyter.org/username"] = user
    if deletion:
        meta["deletionTimestamp"] = deletion
        meta["deletionGracePeriodSeconds"] = 30
    volume = {"name": f"volume-{user}", "persistentVolumeClaim": {"claimName": f"claim-{user}"}}
    spec["volumes"] = [volume] if claim else []
    notebook = spec["containers"][0]
    notebook["volumeMounts"] = [{"mountPath": "/workspace/storage", "name": f"volume-{user}"}] if claim else []
    notebook["resources"]["requests"].update({"cpu": cpu, "memory": memory})
    if ephemeral_storage:
        notebook["resources"]["requests"]["ephemeral-storage"] = ephemeral_storage
    for part in ("requests", "limits"):
        notebook["resources"][part]["nvidia.com/gpu"] = str(gpus)
    if not gpus:
        spec.pop("nodeSelector")
    state = status["containerStatuses"][0]
    if started is None:
        state.update(ready=False, started=False, state={"waiting": {"reason": "ContainerCreating"}})
        status["phase"] = "Pending"
    elif finished:
        state.update(ready=False, started=False, state={"terminated": {
            "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": finished}})
    else:
        state["state"] = {"running": {"startedAt": started}}
    if phase:
        status["phase"] = phase
    return pod
