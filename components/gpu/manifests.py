"""Pure manifests of the GPU feature: the operator's namespace and the CUDA smoke Job of one node."""

from __future__ import annotations

import hashlib

from . import chart

SMOKE_LABEL = "jhub.io/gpu-smoke"
# What the smoke container prints: one `JHUB-GPU:` line per GPU, the CUDA version the driver supports, then
# vectorAdd's own output, which ends with "Test PASSED" when the kernel ran and its result checked out.
SMOKE_SCRIPT = (
    "set -e\n"
    "nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader,nounits"
    " | sed 's/^/JHUB-GPU: /'\n"
    "nvidia-smi | sed -n 's/.*CUDA Version: *\\([0-9.]*\\).*/JHUB-CUDA: \\1/p'\n"
    "/cuda-samples/vectorAdd\n"
)


def namespace() -> dict:
    # The operands are privileged (driver, toolkit, device plugin): Pod Security admission must allow them.
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": chart.NAMESPACE,
        "labels": {"pod-security.kubernetes.io/enforce": "privileged"},
    }}


def smoke_job_name(node: str) -> str:
    """`gpu-smoke-<node>`, shortened with a hash when the node's name is long (names are DNS labels)."""
    name = f"gpu-smoke-{node}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(node.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-.')}-{digest}"


def smoke_job(node: str, resource: str, timeout_s: int, run_id: str) -> dict:
    """A Job that runs nvidia-smi and a CUDA kernel on `node`, with one unit of its GPU `resource`
    (nvidia.com/gpu, nvidia.com/gpu.shared or a MIG slice such as nvidia.com/mig-1g.10gb)."""
    labels = {SMOKE_LABEL: "true", "jhub.io/gpu-smoke-run": run_id}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": smoke_job_name(node), "namespace": chart.NAMESPACE, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": timeout_s,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    # No runtimeClassName: the pod takes the same path as a user's server (the nvidia runtime
                    # is containerd's default, see values.toolkit_env).
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "cuda",
                        "image": chart.SMOKE_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["/bin/sh", "-c", SMOKE_SCRIPT],
                        "env": [{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"}],
                        "resources": {"limits": {resource: "1"}},
                    }],
                },
            },
        },
    }
