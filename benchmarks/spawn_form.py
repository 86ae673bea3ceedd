"""Spawn form benchmark: the form for 100 nodes (mixed GPU models, whole GPUs, MIG single and mixed, time-sliced
and MPS-shared pools, InfiniBand) with 5,000 running pods, rendered by the real KubeSpawner.

Two ways the hub reads the cluster, against the tests' local Kubernetes API (tests/hub/hubtest_kube.py, over
HTTP on 127.0.0.1):
* watch (profiles.watch: true): kubespawner reflectors keep nodes and pods; a render makes no API call;
* lists (profiles.watch: false): each render lists nodes and pods (2 calls).

    .venv/bin/python benchmarks/spawn_form.py

Prints figures; the last lines are `name: value unit`. `spawn_form_build_p50` is the hub's form build (the
`profile_list` callable KubeSpawner awaits: the profiles from live capacity) with the watch;
`spawn_form_render_p50` the whole `KubeSpawner.get_options_form`, which adds KubeSpawner's own template (it makes
a new jinja2 Environment and compiles form.html at every render); `spawn_form_api_calls` the Kubernetes API calls
per render with the watch, `spawn_form_api_calls_lists` without it.
"""

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODES, PODS, RENDERS = 100, 5000, 60

# kubernetes_asyncio reads KUBECONFIG at import; KubeSpawner.k8s_api_host then points at the local API.
_kubeconfig = Path(tempfile.mkdtemp(prefix="jhub-bench-")) / "kubeconfig"
_kubeconfig.write_text(
    "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters: [{name: b, cluster: {server: 'http://127.0.0.1:9'}}]\n"
    "users: [{name: b, user: {token: t}}]\ncontexts: [{name: b, context: {cluster: b, user: b}}]\n")
os.environ["KUBECONFIG"] = str(_kubeconfig)
os.environ.pop("KUBERNETES_SERVICE_HOST", None)
sys.path[:0] = [str(ROOT / "hub"), str(ROOT / "tests" / "hub")]

from hubtest_cluster import A100, H100, L40S, RDMA, node, pod  # noqa: E402
from hubtest_configs import configured, jhub_cfg, new_spawner  # noqa: E402
from hubtest_kube import KubeApi  # noqa: E402

GFD = {"nvidia.com/gpu.present": "true"}


def cluster():
    """100 nodes in seven kinds, 50 pods on each (5,000), every pod with a uid and resourceVersion."""
    kinds = [
        (25, lambda n: node(n, cpu="128", memory="1000Gi", gpus=8, model=A100, labels={**GFD})),
        (10, lambda n: node(n, cpu="128", memory="1000Gi", gpus=4, model=A100, devices={
            "nvidia.com/mig-1g.10gb": 14, "nvidia.com/mig-3g.40gb": 4},
            labels={**GFD, "nvidia.com/mig.strategy": "mixed", "nvidia.com/gpu.count": "8"})),
        (10, lambda n: node(n, cpu="128", memory="1000Gi", gpus=56, model=A100 + "-MIG-1g.10gb",
                            labels={**GFD, "nvidia.com/mig.strategy": "single", "nvidia.com/gpu.count": "56"})),
        (15, lambda n: node(n, cpu="224", memory="2000Gi", gpus=8, model=H100, devices={RDMA: 63},
                            labels={**GFD})),
        (10, lambda n: node(n, cpu="64", memory="512Gi", gpus=8, model=H100 + "-SHARED",
                            labels={**GFD, "nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.count": "2",
                                    "nvidia.com/gpu.sharing-strategy": "time-slicing"})),
        (10, lambda n: node(n, cpu="64", memory="256Gi", model=L40S, devices={"nvidia.com/gpu.shared": 8},
                            labels={**GFD, "nvidia.com/gpu.replicas": "2", "nvidia.com/gpu.count": "4",
                                    "nvidia.com/gpu.sharing-strategy": "mps"})),
        (20, lambda n: node(n, cpu="32", memory="128Gi")),
    ]
    makers = [make for count, make in kinds for _ in range(count)]
    nodes = [make(f"node-{i:03d}") for i, make in enumerate(makers)]
    pods = []
    for i in range(PODS):
        host = nodes[i % NODES]
        alloc = host["status"]["allocatable"]
        devices = {}
        if i % 50 == 0:  # a few GPU users per node; the rest are small system and user pods
            for resource in ("nvidia.com/gpu", "nvidia.com/gpu.shared", "nvidia.com/mig-1g.10gb"):
                if resource in alloc:
                    devices = {resource: 1}
                    break
        p = pod(f"pod-{i:04d}", host["metadata"]["name"], cpu="100m", memory="256Mi", devices=devices,
                namespace=f"ns-{i % 40}", init={"cpu": "50m", "memory": "64Mi"} if i % 7 == 0 else None)
        p["metadata"]["resourceVersion"] = str(1000 + i)
        pods.append(p)
    return nodes, pods


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def timed(call, api, count):
    times, before, result = [], api.list_calls(), None
    for _ in range(count):
        start = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - start) * 1000)
    return times, (api.list_calls() - before) / count, result


def figures(label, times, calls):
    return (f"{label}: p50 {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms, "
            f"{calls:g} API calls each ({len(times)} runs)")


async def after_each_pod_change(profile_list, spawner, api, pods, count):
    """A pod's phase changes (MODIFIED, new resourceVersion) before each build: the reflector's new object
    misses the per-node sums, the other 4,999 pods are still cached."""
    reflector = profile_list.cluster_source._reflectors[1]
    times = []
    for i in range(count):
        changed = {**pods[i], "status": {"phase": "Running" if i % 2 else "Pending"}}
        api.publish("pods", "MODIFIED", changed)
        key = f"{changed['metadata']['namespace']}/{changed['metadata']['name']}"
        while reflector.resources[key]["metadata"]["resourceVersion"] != str(api.version):
            await asyncio.sleep(0.005)
        start = time.perf_counter()
        await profile_list(spawner)
        times.append((time.perf_counter() - start) * 1000)
    return times


async def main():
    nodes, pods = cluster()
    api = KubeApi(watch_seconds=300)
    api.cluster["nodes"], api.cluster["pods"] = nodes, pods
    api.start()
    try:
        cfg = jhub_cfg()
        cfg["profiles"]["watch"] = True
        c = configured(cfg, api.url)
        spawner = new_spawner(c, "bench")
        await spawner.get_options_form()  # starts the reflectors (their own lists are not per render)
        while sum(1 for r in api.requests if "watch=true" in r["query"].lower()) < 2:
            await asyncio.sleep(0.05)
        profile_list = c.KubeSpawner.profile_list
        build, build_calls, profiles = await timed(lambda: profile_list(spawner), api, RENDERS)
        render, render_calls, _ = await timed(spawner.get_options_form, api, RENDERS)
        changed = await after_each_pod_change(profile_list, spawner, api, pods, RENDERS // 3)
        await profile_list.cluster_source.stop()

        cfg["profiles"]["watch"] = False
        c = configured(cfg, api.url)
        spawner = new_spawner(c, "bench")
        list_build, list_calls, _ = await timed(lambda: c.KubeSpawner.profile_list(spawner), api, RENDERS // 3)
    finally:
        api.stop()

    print(f"cluster: {len(nodes)} nodes, {len(pods)} pods; form: {len(profiles)} profiles "
          f"({', '.join(p['slug'] for p in profiles)})")
    print(figures("form build from the watch (the hub's profile list)", build, build_calls))
    print(figures("whole render from the watch (plus KubeSpawner's template, compiled at each render)",
                  render, render_calls))
    print(figures("form build from the watch, one pod changed before each", changed, 0))
    print(figures("form build from two lists (profiles.watch: false)", list_build, list_calls))
    print(f"spawn_form_build_p50: {statistics.median(build):.1f} ms")
    print(f"spawn_form_render_p50: {statistics.median(render):.1f} ms")
    print(f"spawn_form_build_p50_lists: {statistics.median(list_build):.1f} ms")
    print(f"spawn_form_api_calls_lists: {list_calls:g} calls")
    print(f"spawn_form_api_calls: {max(build_calls, render_calls):g} calls")


if __name__ == "__main__":
    asyncio.run(main())
