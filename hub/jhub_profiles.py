"""The spawn form from live capacity: a KubeSpawner `profile_list` computed from node and pod lists.

`build_profile_list` is pure (plain dicts in, plain dicts out). `make_profile_list` wraps it in the async
callable that KubeSpawner calls both to render the form and, at spawn, to apply the chosen overrides; it lists
nodes and pods through kubespawner's own Kubernetes client each time, so a node added later shows up at once.

Formula (see hub/README.md): for a GPU node with G allocatable GPUs,
    cpu_per_gpu = (allocatable CPU - reserve.cpu) / G,  memory_per_gpu = (allocatable memory - reserve.memoryGiB) / G
A GPU model's share is the smallest share among its eligible nodes; a server with g GPUs of that model asks for
g x share CPU (floored to 0.1 core) and g x share memory (floored to 1 MiB), as both request and limit.
"""

import re
from decimal import ROUND_FLOOR, Decimal

from jhub_capacity import HOSTNAME_LABEL, UNLABELLED_GPU, NodeCapacity, Request, node_capacities
from jhub_quantity import GIB

NO_CAPACITY_SLUG = "no-capacity"
CPU_SLUG = "cpu"
_MIB = Decimal(2**20)


def gpu_profile_slug(model: str) -> str:
    return "gpu-" + (re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") or "unknown")


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def gib_text(memory: Decimal) -> str:
    return f"{_floor(memory / GIB, Decimal('0.1')):f}".rstrip("0").rstrip(".") + " GiB"


def cpu_text(cpu: Decimal) -> str:
    text = f"{cpu:f}".rstrip("0").rstrip(".") if "." in f"{cpu:f}" else f"{cpu:f}"
    return f"{text} CPU core" + ("" if cpu == 1 else "s")


def _resources_override(req: Request, gpu_resource: str) -> dict:
    override = {
        "cpu_guarantee": float(req.cpu),
        "cpu_limit": float(req.cpu),
        "mem_guarantee": int(req.memory),
        "mem_limit": int(req.memory),
    }
    if req.gpus:
        override["extra_resource_guarantees"] = {gpu_resource: str(req.gpus)}
        override["extra_resource_limits"] = {gpu_resource: str(req.gpus)}
    return override


def _image_option(images: list) -> dict:
    choices = {}
    for image in images:
        choices[image["name"]] = {
            "display_name": image.get("description") or image["image"],
            "default": bool(image.get("default")),
            "kubespawner_override": {"image": image["image"]},
        }
    if not any(c["default"] for c in choices.values()):
        choices[images[0]["name"]]["default"] = True
    return {"display_name": "Image", "choices": choices}


def _node_option(nodes: list[NodeCapacity], gpu: bool) -> dict | None:
    choices = {"any": {"display_name": "Any node with room", "default": True, "kubespawner_override": {}}}
    for node in nodes:
        hostname = node.labels.get(HOSTNAME_LABEL)
        if not hostname:
            continue
        free = node.free
        room = f"{free.gpus} of {node.allocatable.gpus} GPUs, " if gpu else ""
        choices[node.name] = {
            "display_name": f"{node.name} (free now: {room}{cpu_text(_floor(free.cpu, Decimal('0.1')))}, "
            f"{gib_text(free.memory)})",
            "kubespawner_override": {"node_selector": {HOSTNAME_LABEL: hostname}},
        }
    return {"display_name": "Node", "choices": choices} if len(choices) > 1 else None


def _gpu_share(node: NodeCapacity, reserve: Request) -> Request:
    gpus = Decimal(node.allocatable.gpus)
    return Request(
        cpu=(node.allocatable.cpu - reserve.cpu) / gpus,
        memory=(node.allocatable.memory - reserve.memory) / gpus,
        gpus=1,
    )


def gpu_request(share: Request, gpus: int) -> Request:
    return Request(
        cpu=_floor(share.cpu * gpus, Decimal("0.1")),
        memory=_floor(share.memory * gpus, _MIB),
        gpus=gpus,
    )


def _could_host(node: NodeCapacity, req: Request, only_fitting: bool) -> bool:
    if only_fitting:
        return node.fits(req)
    alloc = node.allocatable
    return req.cpu <= alloc.cpu and req.memory <= alloc.memory and req.gpus <= alloc.gpus


def _gpu_profile(model: str, nodes: list[NodeCapacity], cfg: dict, only_fitting: bool) -> dict | None:
    reserve = Request(cpu=Decimal(str(cfg["reserve"]["cpu"])), memory=Decimal(str(cfg["reserve"]["memoryGiB"])) * GIB)
    shares = [_gpu_share(n, reserve) for n in nodes]
    share = Request(cpu=min(s.cpu for s in shares), memory=min(s.memory for s in shares), gpus=1)
    if share.cpu < Decimal("0.1") or share.memory < _MIB:
        return None  # the reserve leaves nothing per GPU: such nodes are not offered
    most = max(n.allocatable.gpus for n in nodes)
    if cfg["maxGpusPerServer"]:
        most = min(most, cfg["maxGpusPerServer"])
    choices, hosts = {}, set()
    for gpus in range(1, most + 1):
        req = gpu_request(share, gpus)
        fitting = [n for n in nodes if _could_host(n, req, only_fitting)]
        if not fitting:
            continue
        hosts.update(n.name for n in fitting)
        choices[str(gpus)] = {
            "display_name": f"{gpus} GPU{'s' if gpus > 1 else ''} · {cpu_text(req.cpu)} · {gib_text(req.memory)}",
            "kubespawner_override": _resources_override(req, cfg["gpuResource"]),
        }
    if not choices:
        return None
    options = {"image": _image_option(cfg["images"]), "gpus": {"display_name": "GPUs", "choices": choices}}
    if cfg["nodeChoice"]:
        node_option = _node_option([n for n in nodes if n.name in hosts], gpu=True)
        if node_option:
            options["node"] = node_option
    free_most = max(n.free.gpus for n in nodes)
    return {
        "display_name": model,
        "slug": gpu_profile_slug(model),
        "description": f"{len(nodes)} node{'s' if len(nodes) > 1 else ''}; "
        f"up to {free_most} GPU{'s' if free_most != 1 else ''} free on one node now",
        # Unlabelled GPU nodes cannot be selected by model; the GPU request alone steers the scheduler.
        "kubespawner_override": {} if model == UNLABELLED_GPU else {"node_selector": {cfg["gpuProductLabel"]: model}},
        "profile_options": options,
    }


def _cpu_profile(nodes: list[NodeCapacity], cfg: dict, only_fitting: bool) -> dict | None:
    choices, hosts = {}, set()
    for preset in cfg["cpuPresets"]:
        req = Request(cpu=Decimal(str(preset["cpu"])), memory=Decimal(str(preset["memoryGiB"])) * GIB, gpus=0)
        fitting = [n for n in nodes if _could_host(n, req, only_fitting)]
        if not fitting:
            continue
        hosts.update(n.name for n in fitting)
        key = f"{preset['cpu']}cpu-{preset['memoryGiB']}gib".replace(".", "_")
        choices[key] = {
            "display_name": f"{cpu_text(req.cpu)} · {gib_text(req.memory)}",
            "kubespawner_override": _resources_override(req, cfg["gpuResource"]),
        }
    if not choices:
        return None
    options = {"image": _image_option(cfg["images"]), "size": {"display_name": "Size", "choices": choices}}
    if cfg["nodeChoice"]:
        node_option = _node_option([n for n in nodes if n.name in hosts], gpu=False)
        if node_option:
            options["node"] = node_option
    return {
        "display_name": "CPU only",
        "slug": CPU_SLUG,
        "description": "No GPU",
        # CUDA images default to NVIDIA_VISIBLE_DEVICES=all: without this a CPU-only pod on a GPU node sees every GPU.
        "kubespawner_override": {"environment": {"NVIDIA_VISIBLE_DEVICES": "void"}},
        "profile_options": options,
    }


def build_profile_list(
    nodes: list,
    pods: list,
    cfg: dict,
    *,
    node_selector: dict | None = None,
    tolerations: list | None = None,
    affinity_terms: list | None = None,
    only_fitting: bool = True,
) -> list[dict]:
    """Profiles for KubeSpawner: one per GPU model with room, then "CPU only".

    `cfg` is the validated `profiles` section. `only_fitting=True` (the form) offers what fits on some eligible
    node right now; `only_fitting=False` (spawn time) offers what fits on an empty eligible node, so that a
    choice made a minute ago still resolves and the final fit check can refuse it with a clear message.
    """
    caps = node_capacities(
        nodes,
        pods,
        gpu_resource=cfg["gpuResource"],
        gpu_product_label=cfg["gpuProductLabel"],
        node_selector=node_selector,
        tolerations=tolerations,
        affinity_terms=affinity_terms,
    )
    eligible = [c for c in caps if c.eligible]
    by_model = {}
    for cap in eligible:
        if cap.gpu_model:
            by_model.setdefault(cap.gpu_model, []).append(cap)
    profiles = []
    for model in sorted(by_model):
        profile = _gpu_profile(model, by_model[model], cfg, only_fitting)
        if profile:
            profiles.append(profile)
    cpu = _cpu_profile(eligible, cfg, only_fitting) if cfg["cpuPresets"] else None
    if cpu:
        profiles.append(cpu)
    if not profiles:
        return [no_capacity_profile(caps)]
    # CPU only is the default when offered, so nobody holds a GPU by accident.
    (profiles[-1] if cpu else profiles[0])["default"] = True
    return profiles


def no_capacity_profile(caps: list[NodeCapacity]) -> dict:
    reasons = "; ".join(f"{c.name}: {c.why_not or 'full'}" for c in caps) or "the cluster has no nodes"
    return {
        "display_name": "No server fits right now",
        "slug": NO_CAPACITY_SLUG,
        "description": f"Every node is full or unavailable ({reasons}). Try again later.",
        "default": True,
    }


def _as_list(value) -> list:
    # KubeSpawner accepts tolerations as a list or as a dict (values sorted by key).
    return [value[k] for k in sorted(value)] if isinstance(value, dict) else list(value or [])


def make_profile_list(cfg: dict, list_cluster):
    """The callable for `c.KubeSpawner.profile_list`; `list_cluster(spawner)` returns (nodes, pods)."""

    async def profile_list(spawner):
        nodes, pods = await list_cluster(spawner)
        return build_profile_list(
            nodes,
            pods,
            cfg,
            node_selector=dict(spawner.node_selector or {}),
            tolerations=_as_list(spawner.tolerations),
            affinity_terms=spawner.node_affinity_required,
            # KubeSpawner calls this again in load_user_options while the spawn is pending.
            only_fitting=spawner.pending != "spawn",
        )

    return profile_list
