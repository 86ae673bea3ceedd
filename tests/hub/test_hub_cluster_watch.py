"""The form from a watch of nodes and pods (kubespawner's ResourceReflector): no API call per render."""

import asyncio
import time

import pytest

from hubtest_cluster import gpu_operator_cluster, node, pod
from hubtest_configs import SelectOptions, configured, jhub_cfg, new_spawner, spawn_until_pod
from test_hub_gpu_pools import CPU_SLUG, MIXED_1G, users_pool


def watch_cfg(watch=True):
    return jhub_cfg(profiles={**jhub_cfg()["profiles"], "watch": watch})


async def until(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_form_from_the_watch_makes_no_api_calls_and_follows_changes(kube_api):
    kube_api.watch_seconds = 60  # no watch timeout (and relist) inside this test
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    c = configured(watch_cfg(), kube_api.url)
    source = c.KubeSpawner.profile_list.cluster_source
    spawner = new_spawner(c, "alice")
    try:
        first = await spawner.get_options_form()
        assert "MIG 1g.10gb slice: 5 of 7 free" in first
        assert source.watching
        await until(lambda: _watches_open(kube_api, 2))  # each reflector listed again and is now watching
        lists = kube_api.list_calls()
        for _ in range(5):
            assert await spawner.get_options_form() == first
        assert kube_api.list_calls() == lists  # 0 API calls per render

        kube_api.publish("pods", "ADDED", pod("slice-3", "a100-mixed", cpu="1", memory="1Gi",
                                              devices={"nvidia.com/mig-1g.10gb": 1}))
        kube_api.publish("nodes", "ADDED", node("cpu-2", cpu="32", memory="128Gi"))

        async def updated():
            html = await spawner.get_options_form()
            return "MIG 1g.10gb slice: 4 of 7 free" in html and "cpu-2 (free now" in html
        await until(updated)
        kube_api.publish("pods", "DELETED", pod("slice-1", "a100-mixed"))
        await until(lambda: _has(spawner, "MIG 1g.10gb slice: 5 of 7 free"))
        # The spawn-time checks read the same watch: a whole spawn, no list either.
        got = await spawn_until_pod(spawner, {"profile": MIXED_1G, "gpus": "1"})
        assert got["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"
        assert kube_api.list_calls() == lists
        pods_watch = [r for r in kube_api.requests
                      if r["path"] == "/api/v1/pods" and "watch=true" in r["query"].lower()]
        assert pods_watch and all("fieldSelector=status.phase" in r["query"] for r in pods_watch)
    finally:
        await source.stop()


async def _watches_open(kube_api, count):
    return sum(1 for r in kube_api.requests if "watch=true" in r["query"].lower()) >= count


async def _has(spawner, text):
    return text in await spawner.get_options_form()


@pytest.mark.asyncio
async def test_a_deleted_node_leaves_the_form_and_cpu_servers_follow_the_watch(kube_api):
    kube_api.watch_seconds = 60
    nodes, pods = gpu_operator_cluster()
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = users_pool(nodes), pods
    c = configured(watch_cfg(), kube_api.url)
    spawner = new_spawner(c, "bob")
    try:
        assert MIXED_1G in SelectOptions(await spawner.get_options_form()).radios
        kube_api.publish("nodes", "DELETED", next(n for n in nodes if n["metadata"]["name"] == "a100-mixed"))
        await until(lambda: _lacks_radio(spawner, MIXED_1G))
        # cpu-1 fills up (watched): a CPU server may then go to a GPU node.
        kube_api.publish("pods", "ADDED", pod("hog", "cpu-1", cpu="5500m", memory="40Gi"))

        async def cpu_full():
            got = await spawn_until_pod(new_spawner(c, "bob"), {"profile": CPU_SLUG, "size": "2cpu-8gib"})
            return not (got["spec"].get("affinity") or {}).get("nodeAffinity")
        await until(cpu_full)
    finally:
        await c.KubeSpawner.profile_list.cluster_source.stop()


async def _lacks_radio(spawner, slug):
    return slug not in SelectOptions(await spawner.get_options_form()).radios


@pytest.mark.asyncio
async def test_without_the_watch_right_the_form_lists_twice_per_render(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    kube_api.refuse["/api/v1/nodes"] = 1  # the reflector's first list is refused (a ClusterRole without watch)
    c = configured(watch_cfg(), kube_api.url)
    spawner = new_spawner(c, "carol")
    try:
        html = await spawner.get_options_form()
        assert "MIG 1g.10gb slice: 5 of 7 free" in html
        assert not c.KubeSpawner.profile_list.cluster_source.watching
        before = kube_api.list_calls()
        await spawner.get_options_form()
        assert kube_api.list_calls() - before == 2  # nodes and pods, and the watch is not retried every render
    finally:
        await c.KubeSpawner.profile_list.cluster_source.stop()


@pytest.mark.asyncio
async def test_watch_off_lists_nodes_and_pods_at_each_render(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    spawner = new_spawner(configured(watch_cfg(False), kube_api.url), "dan")
    await spawner.get_options_form()
    before = kube_api.list_calls()
    await spawner.get_options_form()
    assert kube_api.list_calls() - before == 2
    assert not any("watch=true" in r["query"].lower() for r in kube_api.requests)


@pytest.mark.asyncio
async def test_renders_at_the_same_time_start_the_watch_once(kube_api):
    kube_api.watch_seconds = 60
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    c = configured(watch_cfg(), kube_api.url)
    spawners = [new_spawner(c, f"user{i}") for i in range(4)]
    try:
        forms = await asyncio.gather(*(s.get_options_form() for s in spawners))
        assert all("MIG 1g.10gb slice: 5 of 7 free" in f for f in forms)
        await until(lambda: _watches_open(kube_api, 2))
        # One reflector per kind: each listed at start and once more before its watch, no more.
        assert kube_api.list_calls() == 4
        assert sum(1 for r in kube_api.requests if "watch=true" in r["query"].lower()) == 2
    finally:
        await c.KubeSpawner.profile_list.cluster_source.stop()


@pytest.mark.asyncio
async def test_a_watch_that_gave_up_falls_back_to_lists_then_starts_again(kube_api):
    kube_api.watch_seconds = 60
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    c = configured(watch_cfg(), kube_api.url)
    source = c.KubeSpawner.profile_list.cluster_source
    spawner = new_spawner(c, "erin")
    try:
        await spawner.get_options_form()
        await until(lambda: _watches_open(kube_api, 2))
        # What kubespawner's reflector does when its watch never recovers: its task ends, on_failure is called.
        pods_reflector = source._reflectors[1]
        pods_reflector.watch_task.cancel()
        await asyncio.gather(pods_reflector.watch_task, return_exceptions=True)
        pods_reflector.on_failure()
        assert not source.watching
        before = kube_api.list_calls()
        kube_api.cluster["pods"].append(pod("slice-9", "a100-mixed", devices={"nvidia.com/mig-1g.10gb": 1}))
        assert "MIG 1g.10gb slice: 4 of 7 free" in await spawner.get_options_form()  # listed, so current
        assert kube_api.list_calls() - before == 2
        await spawner.get_options_form()
        assert kube_api.list_calls() - before == 4  # and again: the retry is a minute away
        source.retry_seconds = 0
        pods_reflector.on_failure()  # the same, with the retry due at once
        await spawner.get_options_form()
        assert source.watching
    finally:
        await source.stop()


@pytest.mark.asyncio
async def test_a_refused_watch_means_current_lists_until_it_is_allowed(kube_api):
    kube_api.watch_seconds = 60
    kube_api.refuse_watch = True  # list allowed, watch not (the ClusterRole of before)
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    c = configured(watch_cfg(), kube_api.url)
    source = c.KubeSpawner.profile_list.cluster_source
    spawner = new_spawner(c, "fred")
    try:
        await spawner.get_options_form()
        await until(lambda: _watch_refused(kube_api, source))
        kube_api.cluster["pods"].append(pod("slice-9", "a100-mixed", devices={"nvidia.com/mig-1g.10gb": 1}))
        before = kube_api.list_calls()
        assert "MIG 1g.10gb slice: 4 of 7 free" in await spawner.get_options_form()  # not the reflector's stale list
        assert kube_api.list_calls() - before in (2, 3)  # our 2 lists (and perhaps a reflector's retry)
        kube_api.refuse_watch = False  # the ClusterRole gets `watch`: the reflectors' own retry succeeds

        async def watching():
            await spawner.get_options_form()
            return source.watching
        await until(watching, seconds=30)
    finally:
        await source.stop()


async def _watch_refused(kube_api, source):
    return any("watch=true" in r["query"].lower() for r in kube_api.requests) and not source.watching
