"""What each node can still take: pure functions over node and pod lists as the Kubernetes API returns them.

A node is *eligible* for user pods when it is Ready, not cordoned, matches the user pods' node selector and
required node affinity, and every NoSchedule/NoExecute taint on it is tolerated. Its *free* capacity is its
allocatable CPU, memory and GPUs minus the requests of the pods bound to it that have not terminated.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from jhub_quantity import parse_quantity

HOSTNAME_LABEL = "kubernetes.io/hostname"
# GPU nodes without the product label (a device plugin without GPU feature discovery) share this model name.
UNLABELLED_GPU = "GPU"
_TERMINATED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Request:
    """What a server asks for: CPU cores, memory bytes and GPUs (as requests, which the scheduler counts)."""

    cpu: Decimal = Decimal(0)
    memory: Decimal = Decimal(0)
    gpus: int = 0


@dataclass
class NodeCapacity:
    name: str
    labels: dict
    gpu_model: str | None
    allocatable: Request
    used: Request
    eligible: bool
    why_not: str = ""
    taints: list = field(default_factory=list)

    @property
    def free(self) -> Request:
        return Request(
            cpu=self.allocatable.cpu - self.used.cpu,
            memory=self.allocatable.memory - self.used.memory,
            gpus=self.allocatable.gpus - self.used.gpus,
        )

    def fits(self, request: Request) -> bool:
        free = self.free
        return request.cpu <= free.cpu and request.memory <= free.memory and request.gpus <= free.gpus


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


def _container_request(container: dict, resource: str) -> Decimal:
    # Kubernetes defaults a missing request to the limit (always so for extended resources like GPUs).
    resources = container.get("resources") or {}
    value = _get(resources, "requests", resource)
    if value is None:
        value = _get(resources, "limits", resource)
    return parse_quantity(value) if value is not None else Decimal(0)


def pod_request(pod: dict, gpu_resource: str) -> Request:
    """A pod's effective request: max(sum of containers, largest init container) plus overhead."""
    spec = pod.get("spec") or {}
    totals = {}
    for resource in ("cpu", "memory", gpu_resource):
        running = sum((_container_request(c, resource) for c in spec.get("containers") or []), Decimal(0))
        init = max((_container_request(c, resource) for c in spec.get("initContainers") or []), default=Decimal(0))
        overhead = _get(spec, "overhead", resource)
        totals[resource] = max(running, init) + (parse_quantity(overhead) if overhead is not None else 0)
    return Request(cpu=totals["cpu"], memory=totals["memory"], gpus=int(totals[gpu_resource]))


def pod_is_active(pod: dict) -> bool:
    return _get(pod, "status", "phase") not in _TERMINATED


def node_capacities(
    nodes: list,
    pods: list,
    *,
    gpu_resource: str,
    gpu_product_label: str,
    node_selector: dict | None = None,
    tolerations: list | None = None,
    affinity_terms: list | None = None,
) -> list[NodeCapacity]:
    """One NodeCapacity per node, sorted by name."""
    used = {}
    for pod in pods:
        node_name = _get(pod, "spec", "nodeName")
        if not node_name or not pod_is_active(pod):
            continue
        req = pod_request(pod, gpu_resource)
        prev = used.get(node_name, Request())
        used[node_name] = Request(prev.cpu + req.cpu, prev.memory + req.memory, prev.gpus + req.gpus)

    result = []
    for node in sorted(nodes, key=lambda n: _get(n, "metadata", "name", default="")):
        name = _get(node, "metadata", "name", default="")
        alloc = _get(node, "status", "allocatable", default={})
        gpus = int(parse_quantity(alloc.get(gpu_resource, 0)))
        labels = dict(_get(node, "metadata", "labels", default={}))
        reason = why_not_eligible(node, node_selector or {}, tolerations or [], affinity_terms or [])
        result.append(
            NodeCapacity(
                name=name,
                labels=labels,
                gpu_model=(labels.get(gpu_product_label) or UNLABELLED_GPU) if gpus else None,
                allocatable=Request(
                    cpu=parse_quantity(alloc.get("cpu", 0)), memory=parse_quantity(alloc.get("memory", 0)), gpus=gpus
                ),
                used=used.get(name, Request()),
                eligible=not reason,
                why_not=reason,
                taints=list(_get(node, "spec", "taints", default=[])),
            )
        )
    return result
