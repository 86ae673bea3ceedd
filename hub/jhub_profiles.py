"""The spawn form from live capacity: a KubeSpawner `profile_list` computed from node and pod lists.

`build_profile_list` is pure (plain dicts in, plain dicts out). `make_profile_list` wraps it in the async
callable that KubeSpawner calls both to render the form and, at spawn, to apply the chosen overrides; it reads
nodes and pods through `list_cluster` (a watch kept by reflectors, or two lists; see jhub_kube), so a node
added later shows up at once.

One profile per GPU pool (jhub_accelerators: whole GPUs, MIG slices, shared GPUs of one model), each titled
with its product and what is free now ("NVIDIA A100-SXM4-80GB, MIG 1g.10gb slice: 5 of 7 free"), then
"CPU only".

Formula (see hub/README.md): a node's CPU and memory, less `reserve`, are split among its accelerator units in
proportion to their weight w (a whole GPU 1, a shared replica 1/replicas, a MIG slice g/7):

    cpu_per_unit(node, pool)    = (allocatable CPU    - reserve.cpu)       x w(pool) / W(node)
    memory_per_unit(node, pool) = (allocatable memory - reserve.memoryGiB) x w(pool) / W(node)

where W(node) is the sum of units x weight over every pool the node advertises (a node of 8 whole GPUs: W = 8,
so each GPU gets 1/8, the whole-GPU formula of before). A pool's share is the smallest among its eligible
nodes; a server with n units asks for n x share CPU (floored to 0.1 core) and n x share memory (floored to
1 MiB), as both request and limit. Whole GPUs are offered 1..G per server; a MIG slice or a shared GPU one per
server (CUDA uses one MIG device per process; the device plugin refuses more than one shared replica).
"""

import re
from decimal import ROUND_FLOOR, Decimal

from jhub_accelerators import MIG, SHARED, WHOLE, Pool
from jhub_capacity import HOSTNAME_LABEL, NodeCapacity, Request, RequestCache, node_capacities
from jhub_quantity import GIB

NO_CAPACITY_SLUG = "no-capacity"
CPU_SLUG = "cpu"
_MIB = Decimal(2**20)


def gpu_profile_slug(model: str) -> str:
    return "gpu-" + (re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") or "unknown")


def _floor(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def gib_text(memory: Decimal) -> str:
    text = f"{_floor(memory / GIB, Decimal('0.1')):f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " GiB"  # 1000 GiB is not "1 GiB"


def cpu_text(cpu: Decimal) -> str:
    text = f"{cpu:f}".rstrip("0").rstrip(".") if "." in f"{cpu:f}" else f"{cpu:f}"
    return f"{text} CPU core" + ("" if cpu == 1 else "s")


def _resources_override(req: Request) -> dict:
    override = {
        "cpu_guarantee": float(req.cpu),
        "cpu_limit": float(req.cpu),
        "mem_guarantee": int(req.memory),
        "mem_limit": int(req.memory),
    }
    devices = {name: str(count) for name, count in sorted(req.devices.items()) if count}
    if devices:
        # KubeSpawner merges dict overrides into the trait, so the network choice adds to these.
        override["extra_resource_guarantees"] = dict(devices)
        override["extra_resource_limits"] = dict(devices)
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


def _network_option(nodes: list[NodeCapacity], cfg: dict) -> dict | None:
    """InfiniBand where some node of the profile advertises the RDMA resource (the Network Operator's RDMA
    shared device plugin): the server requests one and gets IPC_LOCK (RDMA pins memory)."""
    rdma = cfg["rdmaResource"]
    if not rdma or not any(n.allocatable.devices.get(rdma, 0) > 0 for n in nodes):
        return None
    return {"display_name": "Network", "choices": {
        "standard": {"display_name": "Standard (no InfiniBand)", "default": True, "kubespawner_override": {}},
        "rdma": {
            "display_name": f"InfiniBand (RDMA, {rdma})",
            "kubespawner_override": {
                "extra_resource_guarantees": {rdma: "1"},
                "extra_resource_limits": {rdma: "1"},
                "container_security_context": {"capabilities": {"add": ["IPC_LOCK"]}},
            },
        },
    }}


def _node_option(nodes: list[NodeCapacity], pool: Pool | None) -> dict | None:
    choices = {"any": {"display_name": "Any node with room", "default": True, "kubespawner_override": {}}}
    for node in nodes:
        hostname = node.labels.get(HOSTNAME_LABEL)
        if not hostname:
            continue
        free = node.free
        units = f"{pool.unit}s" if pool else ""
        room = (f"{node.free_units(pool)} of {node.allocatable.devices.get(pool.resource, 0)} {units}, "
                if pool else "")
        choices[node.name] = {
            "display_name": f"{node.name} (free now: {room}{cpu_text(_floor(free.cpu, Decimal('0.1')))}, "
            f"{gib_text(free.memory)})",
            "kubespawner_override": {"node_selector": {HOSTNAME_LABEL: hostname}},
        }
    return {"display_name": "Node", "choices": choices} if len(choices) > 1 else None


def unit_share(node: NodeCapacity, pool: Pool, reserve: Request) -> Request:
    """One unit's share of the node's CPU and memory (the formula in the module docstring)."""
    total_weight = sum((p.weight * count for p, count in node.pools), Decimal(0))
    part = pool.weight / total_weight
    return Request(
        cpu=(node.allocatable.cpu - reserve.cpu) * part,
        memory=(node.allocatable.memory - reserve.memory) * part,
        gpus=1,
        devices={pool.resource: 1},
    )


def unit_request(share: Request, pool: Pool, units: int) -> Request:
    return Request(
        cpu=_floor(share.cpu * units, Decimal("0.1")),
        memory=_floor(share.memory * units, _MIB),
        gpus=units,
        devices={pool.resource: units},
    )


def _could_host(node: NodeCapacity, req: Request, only_fitting: bool) -> bool:
    if only_fitting:
        return node.fits(req)
    alloc = node.allocatable
    return (req.cpu <= alloc.cpu and req.memory <= alloc.memory
            and all(count <= alloc.devices.get(name, 0) for name, count in req.devices.items()))


def _extra_options(options: dict, hosts: list[NodeCapacity], cfg: dict, pool: Pool | None) -> dict:
    network = _network_option(hosts, cfg)
    if network:
        options["network"] = network
    if cfg["nodeChoice"]:
        node_option = _node_option(hosts, pool)
        if node_option:
            options["node"] = node_option
    return options


def _gpu_profile(pool: Pool, nodes: list[NodeCapacity], cfg: dict, only_fitting: bool) -> dict | None:
    reserve = Request(cpu=Decimal(str(cfg["reserve"]["cpu"])), memory=Decimal(str(cfg["reserve"]["memoryGiB"])) * GIB)
    shares = [unit_share(n, pool, reserve) for n in nodes]
    share = Request(cpu=min(s.cpu for s in shares), memory=min(s.memory for s in shares))
    if share.cpu < Decimal("0.1") or share.memory < _MIB:
        return None  # the reserve leaves nothing per unit: such nodes are not offered
    most = max(n.allocatable.devices.get(pool.resource, 0) for n in nodes) if pool.kind == WHOLE else 1
    if cfg["maxGpusPerServer"]:
        most = min(most, cfg["maxGpusPerServer"])
    choices, hosts = {}, set()
    for units in range(1, most + 1):
        req = unit_request(share, pool, units)
        fitting = [n for n in nodes if _could_host(n, req, only_fitting)]
        if not fitting:
            continue
        hosts.update(n.name for n in fitting)
        what = f"{units} {pool.unit}{'s' if units > 1 else ''}"
        choices[str(units)] = {
            "display_name": f"{what} · {cpu_text(req.cpu)} · {gib_text(req.memory)}",
            "kubespawner_override": _resources_override(req),
        }
    if not choices:
        return None
    label = {WHOLE: "GPUs", MIG: "MIG slices", SHARED: "Shared GPUs"}[pool.kind]
    options = {"image": _image_option(cfg["images"]), "gpus": {"display_name": label, "choices": choices}}
    _extra_options(options, [n for n in nodes if n.name in hosts], cfg, pool)
    free_units = [n.free_units(pool) for n in nodes]
    total = sum(n.allocatable.devices.get(pool.resource, 0) for n in nodes)
    free_most = max(free_units)
    return {
        "display_name": f"{pool.title}: {sum(free_units)} of {total} free",
        "title": pool.title,  # without the counts: for messages at spawn time
        "slug": pool.slug,
        "description": f"{len(nodes)} node{'s' if len(nodes) > 1 else ''}; "
        f"up to {free_most} free on one node now",
        # Unlabelled GPU nodes cannot be selected by model; the resource request alone steers the scheduler.
        "kubespawner_override": {"node_selector": {cfg["gpuProductLabel"]: pool.product}} if pool.product else {},
        "profile_options": options,
    }


def _cpu_profile(nodes: list[NodeCapacity], cfg: dict, only_fitting: bool) -> dict | None:
    choices, hosts = {}, set()
    for preset in cfg["cpuPresets"]:
        req = Request(cpu=Decimal(str(preset["cpu"])), memory=Decimal(str(preset["memoryGiB"])) * GIB)
        fitting = [n for n in nodes if _could_host(n, req, only_fitting)]
        if not fitting:
            continue
        hosts.update(n.name for n in fitting)
        key = f"{preset['cpu']}cpu-{preset['memoryGiB']}gib".replace(".", "_")
        choices[key] = {
            "display_name": f"{cpu_text(req.cpu)} · {gib_text(req.memory)}",
            "kubespawner_override": _resources_override(req),
        }
    if not choices:
        return None
    options = {"image": _image_option(cfg["images"]), "size": {"display_name": "Size", "choices": choices}}
    _extra_options(options, [n for n in nodes if n.name in hosts], cfg, None)
    return {
        "display_name": "CPU only",
        "slug": CPU_SLUG,
        "description": "No GPU; runs on a CPU node, on a GPU node only while no CPU node has room",
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
    cache: RequestCache | None = None,
) -> list[dict]:
    """Profiles for KubeSpawner: one per GPU pool with room, then "CPU only".

    `cfg` is the validated `profiles` section. `only_fitting=True` (the form) offers what fits on some eligible
    node right now; `only_fitting=False` (spawn time) offers what fits on an empty eligible node, so that a
    choice made a minute ago still resolves and the final fit check can refuse it with a clear message.
    """
    caps = node_capacities(nodes, pods, cfg=cfg, node_selector=node_selector, tolerations=tolerations,
                           affinity_terms=affinity_terms, cache=cache)
    eligible = [c for c in caps if c.eligible]
    by_pool = {}
    for cap in eligible:
        for pool, _units in cap.pools:
            by_pool.setdefault(pool, []).append(cap)
    profiles, slugs = [], set()
    for pool in sorted(by_pool, key=lambda p: (p.slug, p.resource, p.product)):
        profile = _gpu_profile(pool, by_pool[pool], cfg, only_fitting)
        if profile:
            while profile["slug"] in slugs:  # one model shared two ways (renamed and not): keep slugs unique
                profile["slug"] += "-2"
            slugs.add(profile["slug"])
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


def make_profile_list(cfg: dict, list_cluster, cache: RequestCache | None = None):
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
            cache=cache,
        )

    return profile_list
