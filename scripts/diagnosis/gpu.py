"""The GPU Operator: its ClusterPolicy's state and its validator pods, one per GPU node."""

from __future__ import annotations

from .pods import healthy, reason
from .report import Section

NAMESPACE = "gpu-operator"  # components/gpu/chart.py NAMESPACE, CLUSTER_POLICY
CLUSTER_POLICY = "cluster-policy"
VALIDATOR = "app=nvidia-operator-validator"


def check(cluster, operator: bool | None, gpus_in_facts: int) -> Section:
    section = Section("gpu operator")
    policy = cluster.cluster_object("nvidia.com", "v1", "clusterpolicies", CLUSTER_POLICY)
    if policy is None:
        section.data["installed"] = False
        if operator:
            section.problem("GPU Operator: no ClusterPolicy although jhub:gpu.operator is true", "pulumi up")
        elif gpus_in_facts:
            section.problem(f"GPU Operator: not installed, and the facts list {gpus_in_facts} GPUs",
                            "jhub:gpu.operator: true, then pulumi up")
        else:
            section.say("GPU Operator: not installed")
        return section
    state = (policy.get("status") or {}).get("state") or "unknown"
    section.data.update({"installed": True, "state": state})
    section.say(f"ClusterPolicy {CLUSTER_POLICY}: {state}")
    if state != "ready":
        section.problem(f"GPU Operator: ClusterPolicy state is {state}",
                        f"kubectl -n {NAMESPACE} get pods; kubectl -n {NAMESPACE} logs deploy/gpu-operator")
    validators = {}
    for pod in cluster.pods(NAMESPACE, VALIDATOR):
        node = (pod.get("spec") or {}).get("nodeName") or "?"
        ok = healthy(pod)
        validators[node] = "ok" if ok else reason(pod)
        if not ok:
            name = pod["metadata"]["name"]
            section.problem(f"GPU Operator: validator {name} on {node} is {reason(pod)}",
                            f"kubectl -n {NAMESPACE} logs {name} --all-containers (driver, toolkit, cuda, plugin)")
    section.data["validators"] = validators
    section.say(f"validators: {', '.join(f'{n} {s}' for n, s in sorted(validators.items())) or 'none'}")
    return section
