"""jhub's pods that are not Running (the hub's namespace and the users' namespaces), with the reason and
their last events, and a fix per reason."""

from __future__ import annotations

from .report import Section

USER_NAMESPACE_LABEL = "jhub.io/user-namespace=true"  # components/portal/images.py
IMAGE_REASONS = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"}
EVENTS_SHOWN = 3


def reason(pod: dict) -> str:
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = container.get("state") or {}
        for key in ("waiting", "terminated"):
            if state.get(key) and state[key].get("reason") not in (None, "Completed"):
                return state[key]["reason"]
    for condition in status.get("conditions") or []:
        if condition.get("status") == "False" and condition.get("reason"):
            return condition["reason"]
    return status.get("reason") or status.get("phase") or "Unknown"


def healthy(pod: dict) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") == "Succeeded":
        return True
    if status.get("phase") != "Running":
        return False
    return all(c.get("ready") for c in status.get("containerStatuses") or [])


def fix(namespace: str, name: str, why: str, stack: str | None) -> str:
    if why in IMAGE_REASONS:
        return (f"an image is missing on its node: python scripts/bundle.py --check --stack {stack or '<stack>'},"
                " then see the images section")
    if why in ("CrashLoopBackOff", "Error", "OOMKilled"):
        return f"kubectl -n {namespace} logs {name} --previous" + (
            " (OOMKilled: raise the memory limit of its profile, jhub:hub.images)" if why == "OOMKilled" else "")
    if why in ("Unschedulable", "PodScheduled"):
        return f"kubectl -n {namespace} describe pod {name} (no node has the requested CPU/GPU/memory free)"
    return f"kubectl -n {namespace} describe pod {name}"


def _when(event: dict) -> str:
    return event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or ""


def check(cluster, namespace: str, stack: str | None = None) -> Section:
    section = Section("pods")
    namespaces = [namespace] + sorted(n["metadata"]["name"] for n in cluster.namespaces(USER_NAMESPACE_LABEL)
                                      if n["metadata"]["name"] != namespace)
    total = 0
    for ns in namespaces:
        pods = cluster.pods(ns)
        total += len(pods)
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            if healthy(pod):
                continue
            name = pod["metadata"]["name"]
            why = reason(pod)
            events = sorted(cluster.events(ns, name), key=_when)[-EVENTS_SHOWN:]
            shown = [f"{e.get('reason', '')}: {e.get('message', '')}".strip() for e in events]
            section.data[f"{ns}/{name}"] = {"phase": (pod.get("status") or {}).get("phase"), "reason": why,
                                            "node": (pod.get("spec") or {}).get("nodeName"), "events": shown}
            section.problem(f"pod {ns}/{name} is {(pod.get('status') or {}).get('phase', '?')}: {why}"
                            + "".join(f"\n   event: {line}" for line in shown), fix(ns, name, why, stack))
    section.say(f"{total} pods in {', '.join(namespaces)}; {len(section.problems)} not Running")
    return section
