"""The CUDA smoke test's decisions: which GPU resource a node gets tested with, what the pod's log says, and
how a failure names the node and shows the pod's last lines. `run()` is driven through its `Cluster` seam
(the API server cannot run here) with a scripted cluster and a fake clock."""

from __future__ import annotations

import json

from components.gpu import smoke
from components.gpu.component import parse_gpus
from components.gpu.manifests import smoke_job_name

LOG_OK = """JHUB-GPU: 0, NVIDIA H100 80GB HBM3, 595.91.07, 81559
JHUB-GPU: 1, NVIDIA H100 80GB HBM3, 595.91.07, 81559
JHUB-CUDA: 13.1
[Vector addition of 50000 elements]
Copy input data from the host memory to the CUDA device
CUDA kernel launch with 196 blocks of 256 threads
Copy output data from the CUDA device to the host memory
Test PASSED
Done
"""


def test_gpu_resource_prefers_whole_gpus_then_shared_then_mig():
    assert smoke.gpu_resource({"cpu": "8", "nvidia.com/gpu": "2"}) == "nvidia.com/gpu"
    assert smoke.gpu_resource({"nvidia.com/gpu": "0", "nvidia.com/gpu.shared": "8"}) == "nvidia.com/gpu.shared"
    assert smoke.gpu_resource({"nvidia.com/mig-2g.20gb": "3", "nvidia.com/mig-1g.10gb": "7"}) == \
        "nvidia.com/mig-1g.10gb"
    assert smoke.gpu_resource({"cpu": "8", "nvidia.com/gpu": "0"}) is None


def test_parse_log_reads_gpus_cuda_and_the_verdict():
    parsed = smoke.parse_log(LOG_OK)
    assert parsed["cuda"] == "13.1" and parsed["passed"] is True
    assert [g["model"] for g in parsed["gpus"]] == ["NVIDIA H100 80GB HBM3"] * 2
    assert smoke.node_result(parsed, "nvidia.com/gpu", {"nvidia.com/gpu": "2"}) == {
        "model": "NVIDIA H100 80GB HBM3", "count": 2, "resource": "nvidia.com/gpu",
        "driver": "595.91.07", "cuda": "13.1"}
    assert smoke.parse_log("Test FAILED\n")["passed"] is False


def test_failure_names_the_node_and_shows_the_last_lines():
    log = "\n".join(f"line {i}" for i in range(50)) + \
        "\nFailed to allocate device vector A (error code no CUDA-capable device is detected)!"
    message = smoke.failure("gpu02", "the CUDA check failed", log)
    assert message.startswith("GPU smoke test failed on node gpu02: the CUDA check failed")
    assert "no CUDA-capable device" in message and "line 49" in message and "line 20" not in message
    assert "(the pod printed nothing)" in smoke.failure("gpu03", "x", "")


def test_stuck_reason_spots_image_pulls_that_never_succeed():
    status = {"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff",
                                                           "message": "not in the bundle"}}}]}
    assert smoke.stuck_reason(status) == "ImagePullBackOff: not in the bundle"
    assert smoke.stuck_reason({"containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]}) is None


class ScriptedCluster:
    """What the API server would answer, one node map and one outcome per Job."""

    def __init__(self, nodes, outcomes, states=("notReady", "ready"), mig=None):
        self.nodes, self.outcomes, self.states = nodes, outcomes, list(states)
        self.mig = mig or {}  # node -> list of successive nvidia.com/mig.config.state values
        self.created, self.deleted = [], []

    def mig_states(self):
        return {n: (v.pop(0) if len(v) > 1 else v[0]) for n, v in self.mig.items()}

    def policy_state(self):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def gpu_nodes(self):
        return self.nodes

    def replace_job(self, manifest):
        self.created.append(manifest)

    def job_state(self, name):
        return self.outcomes[name]

    def delete_job(self, name):
        self.deleted.append(name)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _run(cluster, timeout=600):
    clock, said = Clock(), []
    results, failures = smoke.run(cluster, timeout, "run", said.append, clock=clock, sleep=clock.sleep)
    return results, failures, said


def test_run_tests_every_gpu_node_and_reports_each():
    cluster = ScriptedCluster(
        {"gpu02": {"nvidia.com/mig-1g.10gb": "14"}, "gpu03": {"nvidia.com/gpu.shared": "8"}},
        {smoke_job_name("gpu02"): ("succeeded", {}, LOG_OK), smoke_job_name("gpu03"): ("succeeded", {}, LOG_OK)})
    results, failures, _ = _run(cluster)
    assert failures == []
    assert results["gpu02"]["resource"] == "nvidia.com/mig-1g.10gb" and results["gpu02"]["count"] == 14
    assert results["gpu03"]["count"] == 8
    limits = {j["metadata"]["name"]: j["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
              for j in cluster.created}
    assert limits == {"gpu-smoke-gpu02": {"nvidia.com/mig-1g.10gb": "1"},
                      "gpu-smoke-gpu03": {"nvidia.com/gpu.shared": "1"}}
    assert sorted(cluster.deleted) == ["gpu-smoke-gpu02", "gpu-smoke-gpu03"]
    assert parse_gpus(json.dumps(results, sort_keys=True)) == results


def test_run_names_the_failed_node_with_its_log():
    cluster = ScriptedCluster(
        {"gpu02": {"nvidia.com/gpu": "1"}, "gpu03": {"nvidia.com/gpu": "1"}},
        {smoke_job_name("gpu02"): ("succeeded", {}, LOG_OK),
         smoke_job_name("gpu03"): ("failed", {"phase": "Failed"}, "CUDA error: no CUDA-capable device\n")})
    results, failures, _ = _run(cluster)
    assert list(results) == ["gpu02"]
    [message] = failures
    assert "failed on node gpu03" in message and "no CUDA-capable device" in message


def test_run_stops_at_a_pull_that_cannot_succeed():
    cluster = ScriptedCluster({"gpu02": {"nvidia.com/gpu": "1"}}, {smoke_job_name("gpu02"): (
        "running", {"containerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull"}}}]}, "")})
    _, [message], _ = _run(cluster)
    assert "gpu02" in message and "ErrImagePull" in message


def test_run_times_out_when_the_operator_never_gets_ready():
    cluster = ScriptedCluster({}, {}, states=("notReady",))
    results, [message], _ = _run(cluster, timeout=120)
    assert results == {} and "not ready after 120s (state: notReady)" in message


def test_run_fails_without_gpu_nodes():
    _, [message], _ = _run(ScriptedCluster({}, {}))
    assert "no node has the label nvidia.com/gpu.present=true" in message


def test_run_names_a_node_whose_device_plugin_never_comes():
    cluster = ScriptedCluster({"gpu02": {"nvidia.com/gpu": "0"}}, {})
    _, [message], _ = _run(cluster, timeout=60)
    assert "failed on node gpu02" in message and "advertises no GPU resource" in message


def test_run_times_out_a_pod_that_never_finishes():
    cluster = ScriptedCluster({"gpu02": {"nvidia.com/gpu": "1"}},
                              {smoke_job_name("gpu02"): ("running", {"phase": "Pending"}, "")})
    _, [message], _ = _run(cluster, timeout=100)
    assert "gpu02" in message and "no result after 100s (pod: Pending)" in message


# The real kubernetes client against the shared fake API server (tests/gpu/smoke_kube_api.py seeds it).

def test_main_runs_the_real_client_end_to_end(capsys, monkeypatch):
    from tests.gpu.smoke_kube_api import jobs, smoke_cluster

    monkeypatch.setattr(smoke, "POLL_S", 0.01)
    with smoke_cluster(nodes={"gpu02": {"cpu": "64", "nvidia.com/gpu": "2"}},
                      outcomes={"gpu02": ("succeeded", LOG_OK)},
                      labels={"gpu02": {"nvidia.com/mig.config.state": "success"}}) as api:
        code = smoke.main({"JHUB_KUBECONFIG": api.kubeconfig_text(), "JHUB_SMOKE_TIMEOUT": "120",
                           "JHUB_SMOKE_RUN": "abc", "JHUB_GPU_NODES": "gpu02",
                           "JHUB_MIG_LAYOUTS": "gpu02=all-disabled"})
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out) == {"gpu02": {"model": "NVIDIA H100 80GB HBM3", "count": 2,
                                             "resource": "nvidia.com/gpu", "driver": "595.91.07", "cuda": "13.1"}}
    assert "POST /apis/batch/v1/namespaces/gpu-operator/jobs" in api.paths()
    assert jobs(api) == {}, "a passed node's Job is deleted"


def test_main_fails_naming_the_node_and_its_log(capsys, monkeypatch):
    from tests.gpu.smoke_kube_api import jobs, smoke_cluster

    monkeypatch.setattr(smoke, "POLL_S", 0.01)
    log = "JHUB-GPU: 0, NVIDIA L40S, 595.91.07, 46068\ncudaErrorNoDevice: no CUDA-capable device is detected\n"
    with smoke_cluster(nodes={"gpu02": {"nvidia.com/gpu": "1"}, "gpu03": {"nvidia.com/gpu.shared": "4"}},
                      outcomes={"gpu02": ("succeeded", LOG_OK), "gpu03": ("failed", log)}) as api:
        code = smoke.main({"JHUB_KUBECONFIG": api.kubeconfig_text(), "JHUB_SMOKE_TIMEOUT": "120"})
    out = capsys.readouterr()
    assert code == 1 and out.out == ""
    assert "GPU smoke test failed on node gpu03" in out.err and "cudaErrorNoDevice" in out.err
    assert "gpu-smoke-gpu03" in jobs(api), "a failed node's Job is kept for inspection (ttl 1h)"


def test_main_reports_a_missing_cluster_policy(capsys, monkeypatch):
    from tests.gpu.smoke_kube_api import smoke_cluster

    monkeypatch.setattr(smoke, "POLL_S", 0.5)
    with smoke_cluster(nodes={}, outcomes={}, policy_state=None) as api:
        code = smoke.main({"JHUB_KUBECONFIG": api.kubeconfig_text(), "JHUB_SMOKE_TIMEOUT": "1"})
    assert code == 1 and "(state: absent)" in capsys.readouterr().err


def test_run_names_a_node_with_gpus_in_its_facts_that_the_operator_never_found():
    cluster = ScriptedCluster({"gpu02": {"nvidia.com/gpu": "1"}}, {smoke_job_name("gpu02"): ("succeeded", {}, LOG_OK)})
    clock, said = Clock(), []
    results, failures = smoke.run(cluster, 60, "run", said.append, clock=clock, sleep=clock.sleep,
                                  expected=("gpu02", "gpu03"))
    assert list(results) == ["gpu02"]
    [message] = failures
    assert "failed on node gpu03" in message and "its facts show NVIDIA GPUs" in message


def test_a_mig_node_is_tested_once_its_layout_is_applied():
    cluster = ScriptedCluster({"gpu02": {"nvidia.com/mig-1g.10gb": "7"}},
                              {smoke_job_name("gpu02"): ("succeeded", {}, LOG_OK)},
                              mig={"gpu02": ["pending", "rebooting", "success"]})
    clock, said = Clock(), []
    results, failures = smoke.run(cluster, 600, "run", said.append, clock=clock, sleep=clock.sleep,
                                  mig_layouts={"gpu02": "all-1g.10gb"})
    assert failures == [] and results["gpu02"]["resource"] == "nvidia.com/mig-1g.10gb"
    assert clock.now >= 2 * smoke.POLL_S, "it waited for the MIG manager"


def test_a_failed_mig_layout_names_the_node_and_skips_its_test():
    # The GPU is still advertised whole: without the check it would pass, unsliced.
    cluster = ScriptedCluster({"gpu02": {"nvidia.com/gpu": "1"}}, {}, mig={"gpu02": ["failed"]})
    clock, said = Clock(), []
    results, [message] = smoke.run(cluster, 600, "run", said.append, clock=clock, sleep=clock.sleep,
                                   mig_layouts={"gpu02": "all-1g.10gb"})
    assert results == {} and cluster.created == []
    assert "failed on node gpu02" in message and "layout all-1g.10gb" in message and "failed" in message
