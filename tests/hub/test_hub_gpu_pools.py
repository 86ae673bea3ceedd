"""The form follows what the GPU and Network Operators advertise: whole GPUs, MIG slices (strategies single and
mixed), time-sliced and MPS-shared GPUs, InfiniBand; and CPU-only servers stay off GPU nodes while they can."""

from decimal import Decimal

import pytest

from jhub_accelerators import MIG, SHARED, WHOLE, node_pools
from jhub_profiles import CPU_SLUG, build_profile_list
from jhub_spawn_check import SpawnRefused
from hubtest_cluster import A100, H100, L40S, RDMA, gpu_operator_cluster, node, pod, profiles_cfg
from hubtest_configs import SelectOptions, configured, jhub_cfg, new_spawner, spawn_until_pod

MIXED_1G, MIXED_3G = "mig-nvidia-a100-sxm4-80gb-1g-10gb", "mig-nvidia-a100-sxm4-80gb-3g-40gb"
SINGLE_1G = "mig-nvidia-a100-sxm4-80gb-1g-10gb-single"
SHARED_H100, SHARED_L40S = "shared-nvidia-h100-80gb-hbm3", "shared-nvidia-l40s"
WHOLE_A100, WHOLE_H100 = "gpu-nvidia-a100-sxm4-80gb", "gpu-nvidia-h100-80gb-hbm3"
GIB = 2**30


def profiles():
    nodes, pods = gpu_operator_cluster()
    return {p["slug"]: p for p in build_profile_list(nodes, pods, profiles_cfg())}


def choice(profile, option, key):
    return profile["profile_options"][option]["choices"][key]["kubespawner_override"]


def test_gfd_labels_and_resources_become_pools():
    cfg = profiles_cfg()
    nodes, _ = gpu_operator_cluster()
    by_name = {n["metadata"]["name"]: n for n in nodes}

    def pools(name):
        n = by_name[name]
        devices = {k: int(v) for k, v in n["status"]["allocatable"].items() if "/" in k}
        return [(p.kind, p.resource, p.product, p.profile, p.replicas, count)
                for p, count in node_pools(n["metadata"]["labels"], devices, cfg)]

    assert pools("a100-mixed") == [
        (WHOLE, "nvidia.com/gpu", A100, "", 1, 2),
        (MIG, "nvidia.com/mig-1g.10gb", A100, "1g.10gb", 1, 7),
        (MIG, "nvidia.com/mig-3g.40gb", A100, "3g.40gb", 1, 2),
    ]
    assert pools("a100-single") == [(MIG, "nvidia.com/gpu", A100 + "-MIG-1g.10gb", "1g.10gb", 1, 56)]
    assert pools("h100-shared") == [(SHARED, "nvidia.com/gpu", H100 + "-SHARED", "", 4, 8)]
    assert pools("l40s-mps") == [(SHARED, "nvidia.com/gpu.shared", L40S, "", 2, 8)]
    assert pools("h100-ib") == [(WHOLE, "nvidia.com/gpu", H100, "", 1, 8)]  # replicas=1: not shared
    assert pools("cpu-1") == []
    a30 = dict(node_pools({"nvidia.com/gpu.product": "NVIDIA-A30", "nvidia.com/mig.strategy": "mixed"},
                          {"nvidia.com/mig-2g.12gb": 2}, cfg))
    assert [p.weight for p in a30] == [Decimal(2) / 4]  # an A30 has 4 compute slices, not 7


def test_time_slicing_on_mig_slices_is_a_shared_slice_pool():
    cfg = profiles_cfg()
    single = node_pools({"nvidia.com/gpu.product": A100 + "-MIG-1g.10gb-SHARED", "nvidia.com/mig.strategy": "single",
                         "nvidia.com/gpu.replicas": "2", "nvidia.com/gpu.sharing-strategy": "time-slicing"},
                        {"nvidia.com/gpu": 112}, cfg)
    mixed = node_pools({"nvidia.com/gpu.product": A100, "nvidia.com/mig.strategy": "mixed",
                        "nvidia.com/mig-3g.40gb.replicas": "3",
                        "nvidia.com/mig-3g.40gb.sharing-strategy": "time-slicing"},
                       {"nvidia.com/mig-3g.40gb": 6, "nvidia.com/mig-1g.10gb.shared": 4}, cfg)
    (pool, units), = single
    assert (pool.kind, pool.profile, pool.replicas, units) == (MIG, "1g.10gb", 2, 112)
    assert pool.title == "NVIDIA A100-SXM4-80GB, MIG 1g.10gb slice, shared (time-sliced, 2 per slice)"
    assert pool.weight == Decimal(1) / 7 / 2
    assert [(p.resource, p.profile, p.replicas, n) for p, n in mixed] == [
        ("nvidia.com/mig-1g.10gb.shared", "1g.10gb", 1, 4), ("nvidia.com/mig-3g.40gb", "3g.40gb", 3, 6)]
    nodes = [node("shared-mig", cpu="64", memory="512Gi", model=A100, devices={"nvidia.com/mig-3g.40gb": 6},
                  labels={"nvidia.com/mig.strategy": "mixed", "nvidia.com/mig-3g.40gb.replicas": "3"})]
    profile = build_profile_list(nodes, [], cfg)[0]
    assert profile["display_name"] == (
        "NVIDIA A100-SXM4-80GB, MIG 3g.40gb slice, shared (time-sliced, 3 per slice): 6 of 6 free")
    assert profile["profile_options"]["gpus"]["choices"]["1"]["display_name"].startswith(
        "1 shared MIG 3g.40gb slice · 10.3 CPU cores")  # (64 - 2) / 6


def test_each_pool_is_titled_with_its_product_and_what_is_free_now():
    got = profiles()
    assert list(got) == [WHOLE_A100, WHOLE_H100, MIXED_1G, SINGLE_1G, MIXED_3G, SHARED_H100, SHARED_L40S, CPU_SLUG]
    titles = {slug: p["display_name"] for slug, p in got.items()}
    assert titles[MIXED_1G] == "NVIDIA A100-SXM4-80GB, MIG 1g.10gb slice: 5 of 7 free"  # 2 slices in use
    assert titles[SINGLE_1G] == "NVIDIA A100-SXM4-80GB, MIG 1g.10gb slice: 56 of 56 free"
    assert titles[MIXED_3G] == "NVIDIA A100-SXM4-80GB, MIG 3g.40gb slice: 2 of 2 free"
    assert titles[SHARED_H100] == "NVIDIA H100-80GB-HBM3, shared (time-sliced, 4 per GPU): 3 of 8 free"
    assert titles[SHARED_L40S] == "NVIDIA L40S, shared (MPS, 2 per GPU): 8 of 8 free"
    assert titles[WHOLE_A100] == "NVIDIA A100-SXM4-80GB, whole GPU: 2 of 2 free"
    assert titles[WHOLE_H100] == "NVIDIA H100-80GB-HBM3, whole GPU: 8 of 8 free"
    assert got[CPU_SLUG].get("default") is True


def test_each_pool_requests_its_own_resource_on_its_own_nodes():
    got = profiles()
    expect = {
        MIXED_1G: ("nvidia.com/mig-1g.10gb", A100),
        MIXED_3G: ("nvidia.com/mig-3g.40gb", A100),
        SINGLE_1G: ("nvidia.com/gpu", A100 + "-MIG-1g.10gb"),
        SHARED_H100: ("nvidia.com/gpu", H100 + "-SHARED"),
        SHARED_L40S: ("nvidia.com/gpu.shared", L40S),
        WHOLE_H100: ("nvidia.com/gpu", H100),
    }
    for slug, (resource, product) in expect.items():
        assert got[slug]["kubespawner_override"] == {"node_selector": {"nvidia.com/gpu.product": product}}
        override = choice(got[slug], "gpus", "1")
        assert override["extra_resource_limits"] == override["extra_resource_guarantees"] == {resource: "1"}
    # A slice or a shared replica is one per server; whole GPUs go up to the most free on a node.
    for slug in (MIXED_1G, MIXED_3G, SINGLE_1G, SHARED_H100, SHARED_L40S):
        assert list(got[slug]["profile_options"]["gpus"]["choices"]) == ["1"]
    assert list(got[WHOLE_A100]["profile_options"]["gpus"]["choices"]) == ["1", "2"]
    assert got[MIXED_1G]["profile_options"]["gpus"]["choices"]["1"]["display_name"] == (
        "1 MIG 1g.10gb slice · 4.6 CPU cores · 36.7 GiB")


def test_slices_and_replicas_get_the_node_cpu_and_memory_in_proportion():
    got = profiles()

    def cpu_mem(slug, units="1"):
        o = choice(got[slug], "gpus", units)
        assert o["cpu_limit"] == o["cpu_guarantee"] and o["mem_limit"] == o["mem_guarantee"]
        return Decimal(str(o["cpu_limit"])), Decimal(o["mem_limit"])

    # a100-mixed: 126 CPU, 992 GiB after the reserve; W = 2 whole + 7 x 1/7 + 2 x 3/7 = 27/7
    assert cpu_mem(WHOLE_A100) == (Decimal("32.6"), Decimal(992 * 7 * GIB // 27 // 2**20 * 2**20))
    assert cpu_mem(MIXED_1G) == (Decimal("4.6"), Decimal(992 * GIB // 27 // 2**20 * 2**20))
    assert cpu_mem(MIXED_3G)[0] == Decimal("14.0")
    whole, one_g, three_g = cpu_mem(WHOLE_A100), cpu_mem(MIXED_1G), cpu_mem(MIXED_3G)
    assert 2 * whole[0] + 7 * one_g[0] + 2 * three_g[0] <= 126
    assert 2 * whole[1] + 7 * one_g[1] + 2 * three_g[1] <= 992 * GIB
    # a100-single: 56 slices of 1/7 GPU each -> 1/56 of the node each
    assert cpu_mem(SINGLE_1G) == (Decimal("2.2"), Decimal(992 * GIB // 56 // 2**20 * 2**20))
    # time-sliced 4 ways on 2 H100s: 8 replicas, 1/8 of the node each; MPS 2 ways on 4 L40S: 1/8 each
    assert cpu_mem(SHARED_H100) == (Decimal("7.7"), Decimal(63 * GIB))
    assert cpu_mem(SHARED_L40S) == (Decimal("7.7"), Decimal(31 * GIB))
    # whole GPUs only: the per-GPU formula of before
    assert cpu_mem(WHOLE_H100, "2") == (Decimal("55.5"), Decimal(498 * GIB))


def test_infiniband_is_offered_only_where_nodes_advertise_rdma():
    got = profiles()
    with_ib = {slug for slug, p in got.items() if "network" in p.get("profile_options", {})}
    assert with_ib == {WHOLE_H100, SHARED_H100, CPU_SLUG}
    network = got[SHARED_H100]["profile_options"]["network"]["choices"]
    assert list(network) == ["standard", "rdma"] and network["standard"]["default"] is True
    assert network["rdma"]["kubespawner_override"] == {
        "extra_resource_guarantees": {RDMA: "1"}, "extra_resource_limits": {RDMA: "1"},
        "container_security_context": {"capabilities": {"add": ["IPC_LOCK"]}},
    }
    no_rdma = build_profile_list(*gpu_operator_cluster(), profiles_cfg(rdmaResource=""))
    assert not any("network" in p.get("profile_options", {}) for p in no_rdma)


def cluster_cfg(**profiles):
    return jhub_cfg(profiles={**jhub_cfg()["profiles"], **profiles})


@pytest.mark.asyncio
async def test_form_rendered_by_kubespawner_shows_every_pool(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    spawner = new_spawner(configured(cluster_cfg(), kube_api.url), "alice")
    html = await spawner.get_options_form()
    form = SelectOptions(html)
    assert form.radios == [WHOLE_A100, WHOLE_H100, MIXED_1G, SINGLE_1G, MIXED_3G, SHARED_H100, SHARED_L40S, CPU_SLUG]
    assert "NVIDIA A100-SXM4-80GB, MIG 1g.10gb slice: 5 of 7 free" in html
    assert "NVIDIA H100-80GB-HBM3, shared (time-sliced, 4 per GPU): 3 of 8 free" in html
    assert form.selects[f"profile-option-{SHARED_H100}--network"] == ["standard", "rdma"]
    assert form.selects[f"profile-option-{MIXED_1G}--node"] == ["any", "a100-mixed"]


@pytest.mark.asyncio
async def test_a_mig_slice_server_requests_the_slice(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    spawner = new_spawner(configured(cluster_cfg(), kube_api.url), "bob")
    got = await spawn_until_pod(spawner, {"profile": MIXED_1G, "gpus": "1"})
    c = got["spec"]["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"
    assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert c["resources"]["limits"]["cpu"] == 4.6
    assert got["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": A100}
    assert {"name": "NVIDIA_VISIBLE_DEVICES", "value": "void"} not in c["env"]


@pytest.mark.asyncio
async def test_a_shared_gpu_server_on_infiniband_gets_rdma_and_ipc_lock(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    spawner = new_spawner(configured(cluster_cfg(), kube_api.url), "carol")
    got = await spawn_until_pod(spawner, {"profile": SHARED_H100, "gpus": "1", "network": "rdma"})
    c = got["spec"]["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == c["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert c["resources"]["limits"][RDMA] == c["resources"]["requests"][RDMA] == "1"
    assert c["securityContext"]["capabilities"] == {"add": ["IPC_LOCK"]}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False  # the rest of the context is kept
    assert got["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": H100 + "-SHARED"}
    plain = await spawn_until_pod(new_spawner(configured(cluster_cfg(), kube_api.url), "dan"),
                                  {"profile": SHARED_H100, "gpus": "1"})
    assert RDMA not in plain["spec"]["containers"][0]["resources"]["limits"]
    assert "capabilities" not in plain["spec"]["containers"][0]["securityContext"]


@pytest.mark.asyncio
async def test_tampered_choices_are_refused(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    c = configured(cluster_cfg(), kube_api.url)
    cases = [
        ({"profile": MIXED_1G, "gpus": "2"},
         "MIG slices '2' is not offered for NVIDIA A100-SXM4-80GB, MIG 1g.10gb slice; offered: 1."),
        ({"profile": SHARED_L40S, "network": "rdma"},
         "'network' is not an option of NVIDIA L40S, shared (MPS, 2 per GPU) (options: image, gpus, node)."),
        ({"profile": SHARED_H100, "network": "ib-please"}, "Network 'ib-please' is not offered"),
        ({"profile": CPU_SLUG, "gpus": "1"}, "'gpus' is not an option of CPU only"),
        ({"profile": "mig-nvidia-a100-sxm4-80gb-7g-80gb"}, "is not offered now"),
    ]
    for options, message in cases:
        with pytest.raises(SpawnRefused) as refused:
            await spawn_until_pod(new_spawner(c, "eve"), options)
        assert message in refused.value.jupyterhub_message
    # A choice from the form that no longer fits: the last 1g.10gb slices were taken meanwhile.
    kube_api.cluster["pods"] += [pod(f"taken-{i}", "a100-mixed", devices={"nvidia.com/mig-1g.10gb": 1})
                                 for i in range(5)]
    with pytest.raises(SpawnRefused) as refused:
        await spawn_until_pod(new_spawner(c, "eve"), {"profile": MIXED_1G, "gpus": "1"})
    message = refused.value.jupyterhub_message
    assert message.startswith("No node can take this server right now: it asks for 1 GPU, 4.6 CPU cores")
    assert "a100-mixed has 0 nvidia.com/mig-1g.10gb, " in message


def chart_affinity(c):
    # What a values builder may already set: user pods only on nodes of the "users" pool.
    c.KubeSpawner.node_affinity_required = [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["users"]}]},
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["shared"]}]},
    ]


def users_pool(nodes):
    for n in nodes:
        n["metadata"]["labels"]["pool"] = "users"
    return nodes


@pytest.mark.asyncio
async def test_cpu_server_is_kept_off_gpu_nodes_while_a_cpu_node_has_room(kube_api):
    nodes, pods = gpu_operator_cluster()
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = users_pool(nodes), pods
    spawner = new_spawner(configured(cluster_cfg(), kube_api.url, prepare=chart_affinity), "frank")
    got = await spawn_until_pod(spawner, {"profile": CPU_SLUG, "size": "2cpu-8gib"})  # cpu-1 has 6 free
    terms = got["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    gpu_nodes = ["a100-mixed", "a100-single", "h100-ib", "h100-shared", "l40s-mps"]
    avoid = [{"key": "metadata.name", "operator": "NotIn", "values": [n]} for n in gpu_nodes]
    assert terms == [
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["users"]}], "matchFields": avoid},
        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["shared"]}], "matchFields": avoid},
    ]
    # Without any required affinity configured, one term says it.
    plain = await spawn_until_pod(new_spawner(configured(cluster_cfg(), kube_api.url), "frank"),
                                  {"profile": CPU_SLUG, "size": "2cpu-8gib"})
    assert plain["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": avoid}]}


@pytest.mark.asyncio
async def test_cpu_server_goes_to_a_gpu_node_when_no_cpu_node_has_room(kube_api):
    nodes, pods = gpu_operator_cluster()
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = users_pool(nodes), pods
    spawner = new_spawner(configured(cluster_cfg(), kube_api.url, prepare=chart_affinity), "gina")
    got = await spawn_until_pod(spawner, {"profile": CPU_SLUG, "size": "8cpu-32gib"})  # cpu-1 has only 6 free
    terms = got["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    assert all("matchFields" not in t for t in terms)  # only the chart's own terms: GPU nodes may take it
    env = {e["name"]: e.get("value") for e in got["spec"]["containers"][0]["env"]}
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    # A GPU server is never steered: it asks for a GPU node anyway.
    gpu = await spawn_until_pod(new_spawner(configured(cluster_cfg(), kube_api.url), "gina"),
                                {"profile": WHOLE_H100, "gpus": "1"})
    assert "affinity" not in gpu["spec"] or "nodeAffinity" not in (gpu["spec"]["affinity"] or {})


def test_a_cluster_without_the_operator_keeps_the_old_form():
    nodes = [node("plain", cpu="32", memory="128Gi", gpus=2, model=L40S), node("c", cpu="8", memory="32Gi")]
    got = build_profile_list(nodes, [], profiles_cfg())
    assert [p["slug"] for p in got] == ["gpu-nvidia-l40s", CPU_SLUG]
    assert got[0]["display_name"] == "NVIDIA L40S, whole GPU: 2 of 2 free"
    assert "network" not in got[0]["profile_options"]
