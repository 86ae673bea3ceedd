"""Who holds each GPU: the kubelet's allocations, and processes where several pods share one device.

A device allocated to exactly one pod is that pod's. A device shared by several pods (time-slicing: the
device plugin hands out ``GPU-<uuid>::<n>`` replicas), or one no allocation names (e.g. MIG slices under
an older naming), is attributed by process: NVML's running processes -> /proc/<pid>/cgroup -> pod UID,
with each pod's own GPU memory. A pod allocated a shared device that runs nothing on it holds it idle.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from portal.agent.nvml import DeviceReading
from portal.agent.podresources import DeviceAllocation

# kubepods/burstable/pod<uid>/... (cgroupfs) or kubepods-burstable-pod<uid with _>.slice/... (systemd)
_POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})", re.I)


def pod_uid_of(pid: int, *, proc_root: Path) -> str | None:
    """The UID of the pod a host process runs in, from its cgroup path; None for a process outside pods."""
    try:
        text = (proc_root / str(pid) / "cgroup").read_text()
    except OSError:  # the process ended, or is not visible
        return None
    for line in text.splitlines():
        match = _POD_UID.search(line)
        if match:
            return match.group(1).replace("_", "-").lower()
    return None


def holders_of(device: DeviceReading, allocated: list[DeviceAllocation], *, proc_root: Path) -> list[dict]:
    """The holders of one device, as the portal's batch names them (see portal.gpu.schema.HolderIn)."""
    pods = sorted({(a.namespace, a.pod, a.container) for a in allocated})
    shared = len({(a.namespace, a.pod) for a in allocated}) > 1
    if pods and not shared:
        namespace, pod, container = pods[0]
        return [{"namespace": namespace, "pod": pod, "container": container}]
    if not pods and not device.processes:
        return []
    memory: dict[str, int | None] = defaultdict(int)
    for process in device.processes:
        uid = pod_uid_of(process.pid, proc_root=proc_root)
        if uid is None:
            continue
        used = process.used_memory_bytes
        memory[uid] = None if used is None or memory[uid] is None else memory[uid] + used
    holders = [{"pod_uid": uid, "memory_bytes": used} for uid, used in sorted(memory.items())]
    # pods given a share that run nothing on it: their share is idle (the portal prefers the process holder
    # where both name the same pod)
    holders += [{"namespace": ns, "pod": pod, "container": container, "util_percent": 0.0, "memory_bytes": 0}
                for ns, pod, container in pods]
    return holders


def attribute(devices: list[DeviceReading], allocations: list[DeviceAllocation] | None, *,
              proc_root: Path) -> dict[str, list[dict]]:
    """Holders per device UUID. ``allocations`` None (the kubelet did not answer): by process only."""
    by_uuid: dict[str, list[DeviceAllocation]] = defaultdict(list)
    for allocation in allocations or ():
        by_uuid[allocation.device_uuid].append(allocation)
    return {device.uuid: holders_of(device, by_uuid.get(device.uuid, []), proc_root=proc_root) for device in devices
            if not device.mig_enabled}
