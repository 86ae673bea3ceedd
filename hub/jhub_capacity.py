"""What each node can still take: pure functions over node and pod lists as the Kubernetes API returns them.

A node is *eligible* for user pods when it is Ready, not cordoned, matches the user pods' node selector and
required node affinity, and every NoSchedule/NoExecute taint on it is tolerated. Its *free* capacity is its
allocatable CPU, memory and extended resources (whole GPUs, MIG slices, shared GPUs, RDMA devices) minus the
requests of the pods bound to it that have not terminated.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from jhub_accelerators import Pool, is_accelerator, node_pools
from jhub_quantity import parse_quantity

HOSTNAME_LABEL = "kubernetes.io/hostname"
_TERMINATED = ("Succeeded", "Failed")
_NOT_DEVICES = ("cpu", "memory", "ephemeral-storage", "pods")


@dataclass(frozen=True)
class Request:
    """What a server asks for: CPU cores, memory bytes, extended resources (as requests, which the scheduler
    counts) and `gpus`, the accelerator units among them (whole GPUs, MIG slices, shared GPUs: what the portal's
    GPU limit counts)."""

    cpu: Decimal = Decimal(0)
    memory: Decimal = Decimal(0)
    gpus: int = 0
    devices: dict = field(default_factory=dict)

    def plus(self, other: "Request") -> "Request":
        devices = dict(self.devices)
        for name, count in other.devices.items():
            devices[name] = devices.get(name, 0) + count
        return Request(self.cpu + other.cpu, self.memory + other.memory, self.gpus + other.gpus, devices)


@dataclass
class NodeCapacity:
    name: str
    labels: dict
    pools: list  # [(Pool, allocatable units)], see jhub_accelerators
    allocatable: Request
    used: Request
    eligible: bool
    why_not: str = ""
    taints: list = field(default_factory=list)

    @property
    def has_gpus(self) -> bool:
        return bool(self.pools)

    @property
    def free(self) -> Request:
        alloc, used = self.allocatable, self.used
        devices = {name: count - used.devices.get(name, 0) for name, count in alloc.devices.items()}
        return Request(alloc.cpu - used.cpu, alloc.memory - used.memory, alloc.gpus - used.gpus, devices)

    def free_units(self, pool: Pool) -> int:
        return self.allocatable.devices.get(pool.resource, 0) - self.used.devices.get(pool.resource, 0)

    def fits(self, request: Request) -> bool:
        alloc, used = self.allocatable, self.used
        if request.cpu > alloc.cpu - used.cpu or request.memory > alloc.memory - used.memory:
            return False
        return all(count <= alloc.devices.get(name, 0) - used.devices.get(name, 0)
                   for name, count in request.devices.items() if count)


def _get(obj, *path, default=None):
    for key in path:
        if not isinstance(obj, dict) or obj.get(key) is None:
            return default
        obj = obj[key]
    return obj


def node_is_ready(node: dict) -> bool:
    conditions = _get(node, "status", "conditions", default=[])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def tolerates(taint: dict, tolerations: list) -> bool:
    """Kubernetes' toleration matching for one taint."""
    for tol in tolerations or []:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        operator = tol.get("operator") or "Equal"
        if not tol.get("key"):
            if operator == "Exists":
                return True
            continue
        if tol.get("key") != taint.get("key"):
            continue
        if operator == "Exists" or (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _expression_matches(expr: dict, values_of: dict) -> bool:
    key, operator, wanted = expr.get("key"), expr.get("operator"), expr.get("values") or []
    present = key in values_of
    value = values_of.get(key)
    if operator == "In":
        return present and value in wanted
    if operator == "NotIn":
        return not present or value not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and wanted:
        try:
            left, right = int(value), int(wanted[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def matches_node_affinity(node: dict, terms: list) -> bool:
    """Required node affinity: the terms are ORed; a term's expressions and fields are ANDed."""
    if not terms:
        return True
    labels = _get(node, "metadata", "labels", default={})
    fields = {"metadata.name": _get(node, "metadata", "name")}
    for term in terms:
        exprs, field_exprs = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue
        if all(_expression_matches(e, labels) for e in exprs) and all(
            _expression_matches(e, fields) for e in field_exprs
        ):
            return True
    return False


def why_not_eligible(node: dict, node_selector: dict, tolerations: list, affinity_terms: list) -> str:
    """'' when user pods may be scheduled on the node, else a short reason."""
    labels = _get(node, "metadata", "labels", default={})
    if not node_is_ready(node):
        return "not Ready"
    if _get(node, "spec", "unschedulable", default=False):
        return "cordoned"
    for key, value in sorted((node_selector or {}).items()):
        if labels.get(key) != value:
            return f"lacks label {key}={value}"
    for taint in _get(node, "spec", "taints", default=[]):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(taint, tolerations):
            return f"taint {taint.get('key')}={taint.get('value', '')}:{taint.get('effect')} not tolerated"
    if not matches_node_affinity(node, affinity_terms):
        return "outside the required node affinity"
    return ""


def _container_requests(container: dict) -> dict:
    # Kubernetes defaults a missing request to the limit (always so for extended resources like GPUs).
    resources = container.get("resources") or {}
    merged = dict(resources.get("limits") or {})
    merged.update(resources.get("requests") or {})
    return {name: parse_quantity(value) for name, value in merged.items() if value is not None}


def pod_request(pod: dict, cfg: dict) -> Request:
    """A pod's effective request: max(sum of containers, largest init container) plus overhead, per resource.

    `cfg` is the validated `profiles` section (which resources are accelerators)."""
    spec = pod.get("spec") or {}
    running, init = {}, {}
    for container in spec.get("containers") or []:
        for name, value in _container_requests(container).items():
            running[name] = running.get(name, 0) + value
    for container in spec.get("initContainers") or []:
        for name, value in _container_requests(container).items():
            init[name] = max(init.get(name, 0), value)
    overhead = spec.get("overhead") or {}
    totals = {}
    for name in set(running) | set(init) | set(overhead):
        extra = parse_quantity(overhead[name]) if overhead.get(name) is not None else 0
        totals[name] = max(running.get(name, 0), init.get(name, 0)) + extra
    devices = {name: int(value) for name, value in totals.items()
               if name not in _NOT_DEVICES and not name.startswith("hugepages-") and value}
    return Request(
        cpu=Decimal(totals.get("cpu", 0)),
        memory=Decimal(totals.get("memory", 0)),
        gpus=sum(count for name, count in devices.items() if is_accelerator(name, cfg)),
        devices=devices,
    )


def pod_is_active(pod: dict) -> bool:
    return _get(pod, "status", "phase") not in _TERMINATED


def _pod_use(pod: dict, cfg: dict):
    """(node name, Request) for a bound pod that has not terminated, else None."""
    spec = pod.get("spec") or {}
    node_name = spec.get("nodeName")
    if not node_name or not pod_is_active(pod):
        return None
    return node_name, pod_request(pod, cfg)


class RequestCache:
    """What pods use, remembered between form renders (one per hub; `sums` is all it offers).

    The watch (kubespawner's reflector) replaces a pod's dict on every change and never edits one in place, so:

    * a pod object seen before (same id(), and the last list is held so no id() of it can be reused) uses what
      it used then: only the objects new since the last call are read, and the per-node sums are updated by
      the pods that came and went, not recounted;
    * a new object with a (uid, resourceVersion) seen before (a relist) is not parsed again.
    """

    def __init__(self):
        self._by_version = {}  # (uid, resourceVersion) -> use
        self._pods, self._ids, self._uses, self._totals, self._sums = [], (), {}, {}, {}

    def _use(self, pod: dict, cfg: dict):
        meta = pod.get("metadata") or {}
        key = (meta.get("uid"), meta.get("resourceVersion"))
        if key[1] is None:
            return _pod_use(pod, cfg)
        use = self._by_version.get(key, self)
        if use is self:
            use = self._by_version[key] = _pod_use(pod, cfg)
        return use

    def sums(self, pods: list, cfg: dict) -> dict:
        """{node name: Request} for these pods, as `_node_sums` computes it."""
        ids = tuple(map(id, pods))
        if ids == self._ids:
            return self._sums
        uses = dict(zip(ids, pods))
        gone = self._uses.keys() - uses.keys()
        new = uses.keys() - self._uses.keys()
        for key in new:
            uses[key] = self._use(uses[key], cfg)
        for key in uses.keys() - new:
            uses[key] = self._uses[key]
        if len(gone) + len(new) <= len(pods) // 4:
            totals = self._totals
            for key in gone:
                _add_use(totals, self._uses[key], -1)
            for key in new:
                _add_use(totals, uses[key], 1)
        else:
            totals = {}
            for use in uses.values():
                _add_use(totals, use, 1)
        self._pods, self._ids, self._uses, self._totals = list(pods), ids, uses, totals
        self._sums = {name: Request(*total) for name, total in totals.items()}
        if len(self._by_version) > 2 * len(pods) + 1000:  # forget pods long gone
            live = {((p.get("metadata") or {}).get("uid"), (p.get("metadata") or {}).get("resourceVersion"))
                    for p in pods}
            self._by_version = {k: v for k, v in self._by_version.items() if k in live}
        return self._sums


def _add_use(totals: dict, use, sign: int):
    if use is None:
        return
    node_name, req = use
    total = totals.get(node_name)
    if total is None:
        total = totals[node_name] = [Decimal(0), Decimal(0), 0, {}]
    total[0] += sign * req.cpu
    total[1] += sign * req.memory
    total[2] += sign * req.gpus
    for name, count in req.devices.items():
        total[3][name] = total[3].get(name, 0) + sign * count


def _node_sums(pods: list, cfg: dict) -> dict:
    """{node name: Request}: what the bound, non-terminated pods on each node request."""
    totals = {}
    for pod in pods:
        _add_use(totals, _pod_use(pod, cfg), 1)
    return {name: Request(*total) for name, total in totals.items()}


def node_capacities(
    nodes: list,
    pods: list,
    *,
    cfg: dict,
    node_selector: dict | None = None,
    tolerations: list | None = None,
    affinity_terms: list | None = None,
    cache: RequestCache | None = None,
) -> list[NodeCapacity]:
    """One NodeCapacity per node, sorted by name. `cfg` is the validated `profiles` section."""
    used = cache.sums(pods, cfg) if cache else _node_sums(pods, cfg)

    result = []
    for node in sorted(nodes, key=lambda n: _get(n, "metadata", "name", default="")):
        name = _get(node, "metadata", "name", default="")
        alloc = _get(node, "status", "allocatable", default={})
        devices = {key: int(parse_quantity(value)) for key, value in alloc.items()
                   if key not in _NOT_DEVICES and not key.startswith("hugepages-")}
        labels = dict(_get(node, "metadata", "labels", default={}))
        reason = why_not_eligible(node, node_selector or {}, tolerations or [], affinity_terms or [])
        result.append(
            NodeCapacity(
                name=name,
                labels=labels,
                pools=node_pools(labels, devices, cfg),
                allocatable=Request(
                    cpu=parse_quantity(alloc.get("cpu", 0)), memory=parse_quantity(alloc.get("memory", 0)),
                    gpus=sum(count for key, count in devices.items() if is_accelerator(key, cfg)), devices=devices,
                ),
                used=used.get(name, Request()),
                eligible=not reason,
                why_not=reason,
                taints=list(_get(node, "spec", "taints", default=[])),
            )
        )
    return result
