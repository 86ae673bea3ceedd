"""Checks at spawn time, where KubeSpawner gives us the real thing.

* `pre_spawn_hook` (JupyterHub runs it before `Spawner.start`): the submitted choices must exist in the
  spawn-time profile list, else a clear refusal instead of KubeSpawner's bare KeyError.
* `modify_pod_hook` (KubeSpawner runs it in `start`, after `load_user_options` applied the profile overrides
  and after the pod manifest is built): a server without GPUs is kept off GPU nodes while a CPU node has room
  for it (a required node affinity excluding the GPU nodes by name, decided from live capacity; when no CPU
  node has room it may go to a GPU node). Then the pod about to be created is judged against the portal limits
  and against live capacity. What is checked is exactly what will be requested.
"""

from jupyterhub.utils import maybe_future
from kubernetes_asyncio.client import (V1Affinity, V1NodeAffinity, V1NodeSelector, V1NodeSelectorRequirement,
                                       V1NodeSelectorTerm)
from tornado import web

from jhub_capacity import NodeCapacity, Request, node_capacities, pod_is_active, pod_request
from jhub_limits import PortalUnavailable, fetch_limits, refusal
from jhub_profiles import NO_CAPACITY_SLUG, cpu_text, gib_text

_USER_ANNOTATION = "hub.jupyter.org/username"


class SpawnRefused(web.HTTPError):
    """Refuses a spawn; JupyterHub shows the message to the user ("Spawn failed: ...")."""

    def __init__(self, message: str):
        super().__init__(403, "%s", message)
        self.jupyterhub_message = message


def user_options_problem(user_options: dict, profiles: list) -> str | None:
    """None when the submitted options name a profile and choices that exist, else what is wrong."""
    slug = (user_options or {}).get("profile")
    profile = next((p for p in profiles if p["slug"] == slug), None) if slug else None
    if slug and profile is None:
        offered = ", ".join(p["display_name"] for p in profiles)
        return f"'{slug}' is not offered now (nodes may have gone). Offered: {offered}."
    profile = profile or next((p for p in profiles if p.get("default")), profiles[0] if profiles else None)
    if profile is None or profile["slug"] == NO_CAPACITY_SLUG:
        return (profile or {}).get("description") or "No server fits right now."
    options = profile.get("profile_options") or {}
    title = profile.get("title") or profile["display_name"]
    for key, value in sorted((user_options or {}).items()):
        if key.endswith("--unlisted-choice"):
            return f"free-form values are not accepted ({key})."
        if key != "profile" and key not in options:
            known = ", ".join(options) or "none"
            return f"'{key}' is not an option of {title} (options: {known})."
        if key in options and value not in options[key]["choices"]:
            offered = ", ".join(options[key]["choices"])
            return (f"{options[key]['display_name']} '{value}' is not offered for {title}; "
                    f"offered: {offered}.")
    return None


def _describe(request: Request, selector: dict) -> str:
    parts = [f"{request.gpus} GPU{'s' if request.gpus != 1 else ''}"] if request.gpus else []
    parts += [cpu_text(request.cpu), gib_text(request.memory)]
    parts += [f"{count} {name}" for name, count in sorted(request.devices.items())
              if not (request.gpus and count == request.gpus and name.startswith("nvidia.com/gpu"))]
    where = ", ".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return ", ".join(parts) + (f" on a node with {where}" if where else "")


def _required_terms(spec: dict) -> list:
    affinity = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    return affinity.get("nodeSelectorTerms") or []


def pod_capacities(pod: dict, nodes: list, pods: list, profiles_cfg: dict, cache=None) -> list[NodeCapacity]:
    """The nodes as this pod sees them: eligibility by its own selector, tolerations and affinity; the pod
    itself not counted among the users of room."""
    spec = pod.get("spec") or {}
    name, namespace = pod["metadata"]["name"], pod["metadata"].get("namespace")
    others = [p for p in pods if (p["metadata"]["name"], p["metadata"].get("namespace")) != (name, namespace)]
    return node_capacities(
        nodes,
        others,
        cfg=profiles_cfg,
        node_selector=spec.get("nodeSelector") or {},
        tolerations=spec.get("tolerations") or [],
        affinity_terms=_required_terms(spec),
        cache=cache,
    )


def gpu_nodes_to_avoid(pod: dict, caps: list[NodeCapacity], profiles_cfg: dict) -> list[str]:
    """For a pod without GPUs: the GPU nodes to keep it off, when some eligible CPU node has room for it now;
    [] when it asks for GPUs or only a GPU node can take it."""
    request = pod_request(pod, profiles_cfg)
    if request.gpus or not any(c.eligible and not c.has_gpus and c.fits(request) for c in caps):
        return []
    return sorted(c.name for c in caps if c.has_gpus)


def keep_off_nodes(pod, names: list[str]):
    """Add `metadata.name NotIn [name]` for each name to every required node affinity term of the V1Pod (the
    API takes one value per node field requirement). Terms are ORed, so each one must exclude them."""
    if not names:
        return pod
    avoid = [V1NodeSelectorRequirement(key="metadata.name", operator="NotIn", values=[n]) for n in names]
    spec = pod.spec
    spec.affinity = spec.affinity or V1Affinity()
    spec.affinity.node_affinity = spec.affinity.node_affinity or V1NodeAffinity()
    required = spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    if required is None or not required.node_selector_terms:
        required = V1NodeSelector(node_selector_terms=[V1NodeSelectorTerm()])
        spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution = required
    for term in required.node_selector_terms:
        term.match_fields = list(term.match_fields or []) + avoid
    return pod


def capacity_problem(pod: dict, nodes: list, pods: list, profiles_cfg: dict, caps=None) -> str | None:
    """None when the pod fits on some eligible node now, else a message naming the nodes' state."""
    spec = pod.get("spec") or {}
    caps = caps if caps is not None else pod_capacities(pod, nodes, pods, profiles_cfg)
    request = pod_request(pod, profiles_cfg)
    if any(c.eligible and c.fits(request) for c in caps):
        return None
    states = []
    for cap in caps:
        if cap.eligible:
            free = cap.free
            asked = sorted(n for n, c in request.devices.items() if c)
            # Free units of what the pod asks for (a MIG slice is not a whole GPU); else the node's GPUs.
            units = "".join(f"{free.devices.get(n, 0)} {'GPUs' if n == profiles_cfg['gpuResource'] else n}, "
                            for n in asked) if asked else (f"{free.gpus} GPUs, " if cap.allocatable.gpus else "")
            states.append(f"{cap.name} has {units}{cpu_text(free.cpu)}, {gib_text(free.memory)} free")
        else:
            states.append(f"{cap.name} is {cap.why_not}")
    return (
        f"No node can take this server right now: it asks for {_describe(request, spec.get('nodeSelector') or {})}. "
        + ("; ".join(states) or "The cluster has no nodes") + ". Choose a smaller size or try again later."
    )


def users_other_servers(pods: list, username: str, this_pod: dict, profiles_cfg: dict) -> Request:
    """What the user's other running servers request (matched by KubeSpawner's unescaped-name annotation)."""
    key = (this_pod["metadata"]["name"], this_pod["metadata"].get("namespace"))
    total = Request()
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (meta.get("annotations") or {}).get(_USER_ANNOTATION) != username or not pod_is_active(pod):
            continue
        if (meta.get("labels") or {}).get("component") != "singleuser-server":
            continue
        if (meta["name"], meta.get("namespace")) == key:
            continue
        total = total.plus(pod_request(pod, profiles_cfg))
    return total


async def limits_problem(spawner, pod: dict, pods: list, cfg: dict) -> str | None:
    portal, profiles_cfg = cfg["portal"], cfg["profiles"]
    username = spawner.user.name
    try:
        answer = await fetch_limits(username, portal)
        spawner.jhub_limits = answer  # reused by jhub_mpi for the user's ResourceQuota
    except PortalUnavailable as exc:
        if portal["failOpen"]:
            spawner.log.warning("jhub: portal limits unavailable (%s); failOpen is true: letting %s spawn",
                                exc, username)
            return None
        spawner.log.error("jhub: portal limits unavailable (%s); failOpen is false: refusing %s's spawn",
                          exc, username)
        return ("The usage portal that checks your limits is not answering, so servers cannot start now. "
                "Try again in a few minutes.")
    problem = refusal(answer, pod_request(pod, profiles_cfg), users_other_servers(pods, username, pod, profiles_cfg))
    if problem:
        spawner.log.info("jhub: refusing %s's spawn: %s", username, problem)
    return problem


def make_hooks(cfg: dict, list_cluster, profile_list, previous_pre_spawn=None, previous_modify_pod=None, cache=None):
    """(pre_spawn_hook, modify_pod_hook) for the validated config; chains hooks configured before ours."""

    async def pre_spawn_hook(spawner):
        if previous_pre_spawn:
            await maybe_future(previous_pre_spawn(spawner))
        problem = user_options_problem(spawner.user_options, await profile_list(spawner))
        if problem:
            raise SpawnRefused(f"Cannot start this server: {problem}")

    async def modify_pod_hook(spawner, pod):
        if previous_modify_pod:
            pod = await maybe_future(previous_modify_pod(spawner, pod))
        serialize = spawner.api.api_client.sanitize_for_serialization
        manifest = serialize(pod)
        nodes, pods = await list_cluster(spawner)
        caps = pod_capacities(manifest, nodes, pods, cfg["profiles"], cache=cache)
        avoid = gpu_nodes_to_avoid(manifest, caps, cfg["profiles"])
        if avoid:
            pod = keep_off_nodes(pod, avoid)
            manifest = serialize(pod)
            spawner.log.info("jhub: %s's server has no GPUs and a CPU node has room: kept off %d GPU node(s)",
                             spawner.user.name, len(avoid))
        if cfg["portal"]["enabled"]:
            problem = await limits_problem(spawner, manifest, pods, cfg)
            if problem:
                raise SpawnRefused(problem)
        # Kept off GPU nodes, the pod sees fewer eligible nodes: judge it again as it now is.
        caps = pod_capacities(manifest, nodes, pods, cfg["profiles"], cache=cache) if avoid else caps
        problem = capacity_problem(manifest, nodes, pods, cfg["profiles"], caps=caps)
        if problem:
            spawner.log.info("jhub: refusing %s's spawn: %s", spawner.user.name, problem)
            raise SpawnRefused(problem)
        return pod

    return pre_spawn_hook, modify_pod_hook

