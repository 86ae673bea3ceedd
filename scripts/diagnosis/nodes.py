"""Nodes: Ready, the MicroK8s version (the kubelet's), GPUs advertised against the GPUs in the facts, and
pressure conditions; nodes of `jhub:nodes` that are not in the cluster."""

from __future__ import annotations

from .report import Section

PRESSURES = {"MemoryPressure": "free memory on {node} (stop idle servers: the portal's pods page)",
             "DiskPressure": "free disk on {node} (df -h /var/snap/microk8s/common); keep its images: "
                             "offline they cannot be pulled again",
             "PIDPressure": "too many processes on {node}: find them with `ps -e --sort=-nlwp | head`",
             "NetworkUnavailable": "Calico on {node}: kubectl -n kube-system logs -l k8s-app=calico-node"}
GPU_RESOURCES = ("nvidia.com/gpu", "nvidia.com/gpu.shared")


def _count(value) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def advertised_gpus(node: dict) -> tuple[int, int]:
    """(physical GPUs the node advertises, schedulable GPU units): GPU feature discovery's
    `nvidia.com/gpu.count` label names the physical count when time-slicing or MIG multiplies the units."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    units = sum(_count(allocatable.get(r)) for r in GPU_RESOURCES)
    units += sum(_count(v) for k, v in allocatable.items() if k.startswith("nvidia.com/mig-"))
    labels = node["metadata"].get("labels") or {}
    physical = _count(labels.get("nvidia.com/gpu.count")) if "nvidia.com/gpu.count" in labels else units
    return (physical if units else 0), units


def check(nodes: list[dict], facts: dict | None) -> Section:
    section = Section("nodes")
    versions = {}
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        name = node["metadata"]["name"]
        status = node.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        ready = conditions.get("Ready", {}).get("status") == "True"
        version = (status.get("nodeInfo") or {}).get("kubeletVersion", "?")
        versions[name] = version
        node_facts = ((facts or {}).get(name) or {}).get("facts") or {}
        microk8s = (node_facts.get("microk8s") or {}).get("version")
        physical, units = advertised_gpus(node)
        in_facts = len(node_facts.get("gpus") or []) if node_facts else None
        gpus = f"GPUs {physical} advertised ({units} schedulable)" + (f", {in_facts} in facts"
                                                                   if in_facts is not None else "")
        pressures = [t for t in PRESSURES if conditions.get(t, {}).get("status") == "True"]
        shown = version if microk8s in (None, version) else f"{microk8s} (kubelet {version})"
        section.say(f"{name}: {'Ready' if ready else 'NOT Ready'}, MicroK8s {shown}, {gpus}"
                    + (f", {' '.join(pressures)}" if pressures else ""))
        section.data[name] = {"ready": ready, "kubeletVersion": version, "microk8sVersion": microk8s,
                              "gpusAdvertised": physical, "gpuUnits": units, "gpusInFacts": in_facts,
                              "pressure": pressures}
        if not ready:
            reason = conditions.get("Ready", {}).get("message") or "no Ready condition"
            section.problem(f"node {name} is not Ready: {reason}",
                            f"on {name}: sudo microk8s inspect; sudo microk8s status --wait-ready --timeout 300")
        for kind in pressures:
            section.problem(f"node {name} reports {kind}", PRESSURES[kind].format(node=name))
        if in_facts and physical < in_facts:
            section.problem(f"node {name} advertises {physical} of the {in_facts} GPUs its facts list",
                            f"jhub:gpu.operator: true, then pulumi up (operator already on: the gpu operator "
                            f"section; nvidia-smi on {name})")
    for name in sorted(set(facts or {}) - set(versions)):
        section.problem(f"node {name} of jhub:nodes is not in the cluster",
                        f"pulumi up (joins it); or remove {name} from jhub:nodes")
    if len(set(versions.values())) > 1:
        listed = ", ".join(f"{n} {v}" for n, v in sorted(versions.items()))
        section.problem(f"nodes run different Kubernetes versions: {listed}",
                        "jhub:microk8s.channel (one channel for every node), then pulumi up")
    return section
