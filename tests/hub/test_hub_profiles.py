"""The spawn form from live capacity: exactly the choices that fit, and nothing else."""

from decimal import Decimal

from jhub_profiles import CPU_SLUG, NO_CAPACITY_SLUG, build_profile_list, gpu_profile_slug
from jhub_quantity import GIB
from hubtest_cluster import A100, L40S, node, pod, profiles_cfg, standard_cluster

A100_SLUG, L40S_SLUG = gpu_profile_slug(A100), gpu_profile_slug(L40S)


def by_slug(profiles):
    return {p["slug"]: p for p in profiles}


def choices(profile, option):
    return list(profile["profile_options"][option]["choices"])


def test_form_offers_exactly_what_fits_now():
    nodes, pods = standard_cluster()
    profiles = build_profile_list(nodes, pods, profiles_cfg())
    assert [p["slug"] for p in profiles] == [A100_SLUG, L40S_SLUG, CPU_SLUG]
    got = by_slug(profiles)
    # gpu-a1 has 2 GPUs free (Running 4 + bound Pending 2; Succeeded/Failed pods count for nothing);
    # gpu-a2 is cordoned, so no A100 count above 2 is offered.
    assert choices(got[A100_SLUG], "gpus") == ["1", "2"]
    # gpu-l1 is empty (its only pod Succeeded); gpu-l2 is NotReady.
    assert choices(got[L40S_SLUG], "gpus") == ["1", "2", "3", "4"]
    # 96 CPU fits on no node now (gpu-a1 has 80 free, gpu-l1 64, cpu-1 6).
    assert choices(got[CPU_SLUG], "size") == ["2cpu-8gib", "8cpu-32gib"]
    # Only Ready, schedulable nodes that can host a choice are offered.
    assert choices(got[A100_SLUG], "node") == ["any", "gpu-a1"]
    assert choices(got[L40S_SLUG], "node") == ["any", "gpu-l1"]
    assert choices(got[CPU_SLUG], "node") == ["any", "cpu-1", "gpu-a1", "gpu-l1"]
    assert all(choices(p, "image") == ["pytorch", "minimal"] for p in profiles)
    assert [p.get("default", False) for p in profiles] == [False, False, True]


def test_presets_follow_the_per_gpu_share_formula():
    nodes, pods = standard_cluster()
    got = by_slug(build_profile_list(nodes, pods, profiles_cfg()))
    two_a100 = got[A100_SLUG]["profile_options"]["gpus"]["choices"]["2"]["kubespawner_override"]
    # (128 - 2 reserved) / 8 GPUs = 15.75 CPU per GPU; (1000 - 8) GiB / 8 = 124 GiB per GPU
    assert two_a100["cpu_limit"] == two_a100["cpu_guarantee"] == 31.5
    assert two_a100["mem_limit"] == two_a100["mem_guarantee"] == 248 * 2**30
    assert two_a100["extra_resource_limits"] == {"nvidia.com/gpu": "2"}
    one_l40s = got[L40S_SLUG]["profile_options"]["gpus"]["choices"]["1"]
    assert one_l40s["kubespawner_override"]["cpu_limit"] == 15.5  # (64 - 2) / 4
    assert one_l40s["display_name"] == "1 GPU · 15.5 CPU cores · 62 GiB"
    assert got[A100_SLUG]["kubespawner_override"] == {"node_selector": {"nvidia.com/gpu.product": A100}}
    node_choice = got[A100_SLUG]["profile_options"]["node"]["choices"]["gpu-a1"]
    assert node_choice["kubespawner_override"] == {"node_selector": {"kubernetes.io/hostname": "gpu-a1"}}
    assert "2 of 8 GPUs" in node_choice["display_name"]


def test_spawn_time_list_keeps_choices_that_fit_an_empty_node():
    nodes, pods = standard_cluster()
    got = by_slug(build_profile_list(nodes, pods, profiles_cfg(), only_fitting=False))
    assert choices(got[A100_SLUG], "gpus") == [str(g) for g in range(1, 9)]
    assert choices(got[CPU_SLUG], "size") == ["2cpu-8gib", "8cpu-32gib", "96cpu-64gib"]


def test_cpu_only_cluster_and_gpu_cap():
    nodes = [node("small", cpu="4", memory="16Gi")]
    profiles = build_profile_list(nodes, [], profiles_cfg())
    assert [p["slug"] for p in profiles] == [CPU_SLUG]
    assert choices(profiles[0], "size") == ["2cpu-8gib"]
    assert profiles[0]["kubespawner_override"]["environment"] == {"NVIDIA_VISIBLE_DEVICES": "void"}
    nodes, pods = standard_cluster()
    capped = by_slug(build_profile_list(nodes, pods, profiles_cfg(maxGpusPerServer=2)))
    assert choices(capped[L40S_SLUG], "gpus") == ["1", "2"]


def test_nothing_fits_gives_one_explaining_profile():
    nodes = [node("busy", cpu="4", memory="16Gi"), node("down", cpu="64", memory="256Gi", ready=False)]
    pods = [pod("hog", "busy", cpu="3500m", memory="15Gi")]
    profiles = build_profile_list(nodes, pods, profiles_cfg())
    assert [p["slug"] for p in profiles] == [NO_CAPACITY_SLUG]
    assert "busy: full" in profiles[0]["description"] and "down: not Ready" in profiles[0]["description"]
    assert build_profile_list([], [], profiles_cfg())[0]["slug"] == NO_CAPACITY_SLUG


def test_taints_selectors_and_affinity_decide_eligibility():
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    nodes = [node("g", cpu="32", memory="128Gi", gpus=2, model=L40S, taints=[taint], labels={"pool": "b"}),
             node("c", cpu="16", memory="64Gi", labels={"pool": "a"})]
    assert [p["slug"] for p in build_profile_list(nodes, [], profiles_cfg())] == [CPU_SLUG]
    tolerated = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    with_gpu = build_profile_list(nodes, [], profiles_cfg(), tolerations=tolerated)
    assert [p["slug"] for p in with_gpu] == [L40S_SLUG, CPU_SLUG]
    only_a = build_profile_list(nodes, [], profiles_cfg(), tolerations=tolerated, node_selector={"pool": "a"})
    assert [p["slug"] for p in only_a] == [CPU_SLUG]
    assert choices(only_a[0], "node") == ["any", "c"]
    affinity = [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["b"]}]}]
    only_b = build_profile_list(nodes, [], profiles_cfg(), tolerations=tolerated, affinity_terms=affinity)
    assert choices(only_b[1], "node") == ["any", "g"]


def test_init_containers_and_overhead_count_like_the_scheduler():
    from jhub_capacity import pod_request

    p = pod("x", "n", cpu="1", memory="1Gi", init={"cpu": "3", "memory": "512Mi"})
    p["spec"]["overhead"] = {"cpu": "250m"}
    req = pod_request(p, profiles_cfg())
    assert req.cpu == Decimal("3.25") and req.memory == GIB and req.gpus == 0


def test_output_is_deterministic():
    nodes, pods = standard_cluster()
    first = build_profile_list(nodes, pods, profiles_cfg())
    second = build_profile_list(list(reversed(nodes)), list(reversed(pods)), profiles_cfg())
    assert first == second


def test_gpu_nodes_without_a_product_label_still_get_a_profile():
    nodes = [node("plain-gpu", cpu="32", memory="128Gi", gpus=2)]
    profiles = build_profile_list(nodes, [], profiles_cfg())
    assert [(p["slug"], p["display_name"]) for p in profiles] == [("gpu-gpu", "GPU: 2 of 2 free"),
                                                                     (CPU_SLUG, "CPU only")]
    assert profiles[0]["kubespawner_override"] == {}  # no selector on a label that no node has
    assert choices(profiles[0], "gpus") == ["1", "2"]


def test_request_cache_follows_changed_pods_and_reuses_unchanged_ones():
    from jhub_capacity import RequestCache

    nodes = [node("g", cpu="32", memory="128Gi", gpus=4, model=L40S)]
    pods = [pod("a", "g", cpu="1", memory="1Gi", gpus=1), pod("b", "g", cpu="1", memory="1Gi", gpus=1)]
    for i, p in enumerate(pods):
        p["metadata"]["resourceVersion"] = str(i + 1)
    cache = RequestCache()

    def free_gpus(pods):
        profile = build_profile_list(nodes, pods, profiles_cfg(), cache=cache)[0]
        return profile["display_name"]

    assert free_gpus(pods) == "NVIDIA L40S, whole GPU: 2 of 4 free"
    assert free_gpus(list(pods)) == "NVIDIA L40S, whole GPU: 2 of 4 free"
    # The watch replaces a changed pod by a new object with a new resourceVersion: here b finished.
    done = {**pods[1], "status": {"phase": "Succeeded"}, "metadata": {**pods[1]["metadata"], "resourceVersion": "9"}}
    assert free_gpus([pods[0], done]) == "NVIDIA L40S, whole GPU: 3 of 4 free"
    assert free_gpus([pods[0]]) == "NVIDIA L40S, whole GPU: 3 of 4 free"
    assert free_gpus([]) == "NVIDIA L40S, whole GPU: 4 of 4 free"
    assert free_gpus(pods) == "NVIDIA L40S, whole GPU: 2 of 4 free"


def test_request_cache_sums_match_a_full_count_through_any_sequence_of_changes():
    import random

    from jhub_capacity import RequestCache, node_capacities

    rng = random.Random(7)
    nodes = [node(f"n{i}", cpu="64", memory="256Gi", gpus=8, model=L40S) for i in range(4)]
    cfg, cache, version = profiles_cfg(), RequestCache(), 0

    def new_pod(name):
        nonlocal version
        version += 1
        p = pod(name, f"n{rng.randrange(4)}", cpu=f"{rng.randrange(1, 9)}00m", memory=f"{rng.randrange(1, 5)}Gi",
                gpus=rng.randrange(3), phase=rng.choice(["Running", "Running", "Pending", "Succeeded"]))
        p["metadata"]["resourceVersion"] = str(version)
        return p

    pods = [new_pod(f"p{i}") for i in range(40)]
    for step in range(200):
        change = rng.choice(["replace", "add", "remove", "relist", "none"])
        if change == "replace" and pods:
            i = rng.randrange(len(pods))
            pods[i] = new_pod(pods[i]["metadata"]["name"])
        elif change == "add":
            pods.append(new_pod(f"q{step}"))
        elif change == "remove" and pods:
            pods.pop(rng.randrange(len(pods)))
        elif change == "relist":  # new objects, same uid and resourceVersion
            pods = [{**p, "metadata": dict(p["metadata"])} for p in pods]
        cached = node_capacities(nodes, pods, cfg=cfg, cache=cache)
        counted = node_capacities(nodes, pods, cfg=cfg)
        assert [(c.name, c.free.cpu, c.free.memory, c.free.gpus, {k: v for k, v in c.free.devices.items()})
                for c in cached] == [
            (c.name, c.free.cpu, c.free.memory, c.free.gpus, {k: v for k, v in c.free.devices.items()})
            for c in counted], f"step {step} ({change})"
