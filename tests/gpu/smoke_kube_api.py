"""The cluster the GPU smoke test (components/gpu/smoke.py) meets, seeded into the shared fake API server
(tests/support/kubeapi.py): GPU nodes, the ClusterPolicy, and Jobs whose one pod's outcome and log the test
scripts per node. The real `kubernetes` client talks to it over HTTP."""

from __future__ import annotations

from tests.support.kubeapi import KubeApiServer

NS = "gpu-operator"


def smoke_cluster(*, nodes: dict[str, dict], outcomes: dict[str, tuple[str, str]], policy_state="ready",
                  labels: dict[str, dict] | None = None) -> KubeApiServer:
    """``nodes``: name -> allocatable; ``outcomes``: node -> ("succeeded" | "failed", log)."""
    api = KubeApiServer()
    for name, allocatable in sorted(nodes.items()):
        api.add({"kind": "Node", "apiVersion": "v1",
                 "metadata": {"name": name, "labels": {"nvidia.com/gpu.present": "true",
                                                       **(labels or {}).get(name, {})}},
                 "status": {"allocatable": allocatable}})
    api.add({"kind": "Node", "apiVersion": "v1", "metadata": {"name": "cpu-only", "labels": {}},
             "status": {"allocatable": {"cpu": "8"}}})  # not a GPU node: the smoke test must not pick it
    if policy_state is not None:
        api.add({"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
                 "status": {"state": policy_state}})

    def run_job(job: dict) -> None:
        """The Job controller and the kubelet, at once: the Job's pod ran to the node's scripted outcome."""
        node = job["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"]
        outcome, log = outcomes[node]
        job["status"] = {"succeeded": 1} if outcome == "succeeded" else {"failed": 1}
        pod = api.add({"kind": "Pod", "apiVersion": "v1",
                       "metadata": {"name": f"pod-{node}", "namespace": NS,
                                    "labels": {"job-name": job["metadata"]["name"]}},
                       "spec": {"nodeName": node, "containers": [{"name": "cuda", "image": "x"}]},
                       "status": {"phase": "Succeeded" if outcome == "succeeded" else "Failed"}})
        api.logs[(NS, pod["metadata"]["name"])] = log

    api.on_create["jobs"] = run_job
    return api


def jobs(api: KubeApiServer) -> dict[str, dict]:
    return {job["metadata"]["name"]: job for job in api.cluster.get("jobs", [])}
