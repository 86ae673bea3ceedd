"""The CUDA smoke test, run by `pulumi up` on the admin machine once the GPU Operator is installed.

`python -m components.gpu.smoke` (a `command.local.Command`, see component.py) waits for the ClusterPolicy
to be ready, then on every node the operator found GPUs on (label `nvidia.com/gpu.present=true`; every node
whose facts show NVIDIA GPUs must be among them, and a MIG pool's node must have its layout applied) runs
one Job (`manifests.smoke_job`: nvidia-smi and CUDA's vectorAdd, one unit of the node's GPU resource), and
waits for all of them within one deadline. It talks to the API server with the stack's kubeconfig (from the environment,
never a file) through the `kubernetes` client, so the admin machine needs no kubectl.

stdout: on success, one JSON object `{node: {model, count, driver, cuda, resource}}`: the stack output `gpus`.
stderr: progress; on failure, per failed node its name, why, and the pod's last log lines; exit status 1.
The decisions (which resource, what the log says, the failure text) are pure functions, tested here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable, Optional

import yaml

from . import chart
from .manifests import smoke_job, smoke_job_name

MIG_STATE_LABEL = "nvidia.com/mig.config.state"  # pending, rebooting, success, failed (set by the MIG manager)
LOG_TAIL_LINES = 20
POLL_S = 10
# Pod states that never get better by waiting.
STUCK_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                 "CreateContainerError", "RunContainerError")


def gpu_resource(allocatable: dict) -> Optional[str]:
    """The GPU resource a node advertises: whole GPUs, time-sliced shares, else its first MIG slice."""
    def count(name):
        try:
            return int(str(allocatable.get(name, "0")))
        except ValueError:
            return 0
    for name in ("nvidia.com/gpu", "nvidia.com/gpu.shared"):
        if count(name) > 0:
            return name
    slices = sorted(k for k in allocatable if k.startswith("nvidia.com/mig-") and count(k) > 0)
    return slices[0] if slices else None


def parse_log(log: str) -> dict:
    """What the smoke container printed: its GPUs, the driver's CUDA version, whether vectorAdd passed."""
    gpus, cuda = [], None
    for line in log.splitlines():
        if line.startswith("JHUB-GPU:"):
            fields = [f.strip() for f in line[len("JHUB-GPU:"):].split(",")]
            if len(fields) >= 3:
                gpus.append({"index": fields[0], "model": fields[1], "driver": fields[2],
                             "memoryMiB": fields[3] if len(fields) > 3 else None})
        elif line.startswith("JHUB-CUDA:"):
            cuda = line[len("JHUB-CUDA:"):].strip() or None
    return {"gpus": gpus, "cuda": cuda, "passed": "Test PASSED" in log}


def node_result(parsed: dict, resource: str, allocatable: dict) -> dict:
    """One node's entry of the `gpus` output. `count` is what the node advertises of `resource` (GPUs, or
    shares/slices when the pool shares them); the pod itself sees the one it was given."""
    models = sorted({g["model"] for g in parsed["gpus"]})
    drivers = sorted({g["driver"] for g in parsed["gpus"]})
    return {
        "model": ", ".join(models) or None,
        "count": int(str(allocatable.get(resource, "0")) or 0),
        "resource": resource,
        "driver": ", ".join(drivers) or None,
        "cuda": parsed["cuda"],
    }


def failure(node: str, reason: str, log: str) -> str:
    lines = [line for line in (log or "").splitlines() if line.strip()][-LOG_TAIL_LINES:]
    shown = "\n".join(f"    {line}" for line in lines) if lines else "    (the pod printed nothing)"
    return f"GPU smoke test failed on node {node}: {reason}\n  last log lines of its pod:\n{shown}"


def stuck_reason(pod_status: dict) -> Optional[str]:
    for status in (pod_status or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            return f"{waiting['reason']}: {waiting.get('message') or ''}".strip().rstrip(":")
    return None


class Cluster:
    """The few API calls the smoke test makes (kubernetes client), kept apart from the decisions."""

    def __init__(self, kubeconfig: dict):
        from kubernetes import client, config

        config.load_kube_config_from_dict(kubeconfig)
        self.client = client
        self.core, self.batch = client.CoreV1Api(), client.BatchV1Api()
        self.custom = client.CustomObjectsApi()

    def policy_state(self) -> Optional[str]:
        try:
            policy = self.custom.get_cluster_custom_object("nvidia.com", "v1", "clusterpolicies",
                                                          chart.CLUSTER_POLICY)
        except self.client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return (policy.get("status") or {}).get("state")

    def gpu_nodes(self) -> dict[str, dict]:
        nodes = self.core.list_node(label_selector=f"{chart.GPU_PRESENT_LABEL}=true").items
        return {n.metadata.name: dict(n.status.allocatable or {}) for n in nodes}

    def mig_states(self) -> dict[str, Optional[str]]:
        """GPU node -> the MIG manager's verdict on its layout (`nvidia.com/mig.config.state`)."""
        nodes = self.core.list_node(label_selector=f"{chart.GPU_PRESENT_LABEL}=true").items
        return {n.metadata.name: (n.metadata.labels or {}).get(MIG_STATE_LABEL) for n in nodes}

    def replace_job(self, manifest: dict) -> None:
        name, ns = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
        try:
            self.batch.delete_namespaced_job(name, ns, propagation_policy="Foreground")
        except self.client.ApiException as error:
            if error.status != 404:
                raise
        for _ in range(60):
            try:
                self.batch.read_namespaced_job(name, ns)
            except self.client.ApiException as error:
                if error.status == 404:
                    break
                raise
            time.sleep(2)
        self.batch.create_namespaced_job(ns, manifest)

    def job_state(self, name: str) -> tuple[str, dict, str]:
        """("running" | "succeeded" | "failed", the pod's status, its log so far)."""
        job = self.batch.read_namespaced_job(name, chart.NAMESPACE)
        pods = self.core.list_namespaced_pod(chart.NAMESPACE, label_selector=f"job-name={name}").items
        pod_status, log = {}, ""
        if pods:
            pod = pods[-1]
            pod_status = self.client.ApiClient().sanitize_for_serialization(pod.status) or {}
            try:
                log = self.core.read_namespaced_pod_log(pod.metadata.name, chart.NAMESPACE,
                                                        tail_lines=200)
            except self.client.ApiException:
                log = ""
        state = "succeeded" if (job.status.succeeded or 0) > 0 else \
            "failed" if (job.status.failed or 0) > 0 else "running"
        return state, pod_status, log

    def delete_job(self, name: str) -> None:
        try:
            self.batch.delete_namespaced_job(name, chart.NAMESPACE, propagation_policy="Background")
        except self.client.ApiException:
            pass


def run(cluster: Cluster, timeout_s: int, run_id: str, say: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
        expected: tuple[str, ...] = (), mig_layouts: Optional[dict[str, str]] = None) -> tuple[dict, list]:
    """(results per node, failure messages). `expected`: the nodes whose facts show NVIDIA GPUs; each must
    be found by the operator too. `mig_layouts`: node -> the MIG layout jhub labelled it with; the MIG manager
    must report it applied before that node is tested (else its GPUs would pass whole, unsliced)."""
    mig_layouts = dict(mig_layouts or {})
    deadline = clock() + timeout_s
    state = None
    while clock() < deadline:
        state = cluster.policy_state()
        if state == "ready":
            break
        sleep(POLL_S)
    else:
        return {}, [f"the GPU Operator's ClusterPolicy {chart.CLUSTER_POLICY} is not ready after {timeout_s}s "
                    f"(state: {state or 'absent'}); see microk8s kubectl -n {chart.NAMESPACE} get pods"]
    say("GPU Operator ready")
    nodes = cluster.gpu_nodes()
    while not set(expected) <= set(nodes) and clock() < deadline:  # NFD and the operator label new nodes
        sleep(POLL_S)
        nodes = cluster.gpu_nodes()
    unseen = [failure(n, f"its facts show NVIDIA GPUs, but the operator never labelled it "
                         f"{chart.GPU_PRESENT_LABEL}=true (see the node-feature-discovery-worker and gpu-operator "
                         f"pods in {chart.NAMESPACE})", "") for n in sorted(set(expected) - set(nodes))]
    if not nodes:
        return {}, unseen or [
            f"no node has the label {chart.GPU_PRESENT_LABEL}=true: the operator found no NVIDIA GPU "
            "(check the nodes' facts in `pulumi stack output nodes`), or turn jhub:gpu.operator off"]
    states = cluster.mig_states() if mig_layouts else {}
    resources = {n: r for n, a in nodes.items() if (r := gpu_resource(a))}

    def settled(node: str) -> bool:
        return node not in mig_layouts or states.get(node) in ("success", "failed")

    while (len(resources) < len(nodes) or not all(settled(n) for n in nodes)) and clock() < deadline:
        sleep(POLL_S)  # the device plugin (and a MIG reconfiguration) may still be on its way
        nodes = cluster.gpu_nodes()
        states = cluster.mig_states() if mig_layouts else {}
        resources = {n: r for n, a in nodes.items() if (r := gpu_resource(a))}
    failures = list(unseen)
    for node in sorted(nodes):
        if node in mig_layouts and states.get(node) != "success":
            failures.append(failure(node, f"the MIG manager has not applied the layout {mig_layouts[node]} "
                                          f"({MIG_STATE_LABEL}: {states.get(node) or 'unset'}); see the "
                                          f"nvidia-mig-manager pod's log in {chart.NAMESPACE}", ""))
            resources.pop(node, None)
        elif node not in resources:
            failures.append(failure(node, "the node advertises no GPU resource (nvidia.com/gpu, "
                                          "nvidia.com/gpu.shared or nvidia.com/mig-*): its device plugin is not "
                                          "running", ""))
    remaining = max(60, int(deadline - clock()))
    for node, resource in sorted(resources.items()):
        cluster.replace_job(smoke_job(node, resource, remaining, run_id))
        say(f"smoke test started on {node} ({resource})")
    results, pending = {}, dict(sorted(resources.items()))
    while pending:
        for node in list(pending):
            state, pod_status, log = cluster.job_state(smoke_job_name(node))
            stuck = stuck_reason(pod_status)
            if state == "succeeded":
                parsed = parse_log(log)
                if parsed["passed"]:
                    results[node] = node_result(parsed, pending[node], nodes[node])
                    cluster.delete_job(smoke_job_name(node))
                    say(f"smoke test passed on {node}")
                else:
                    failures.append(failure(node, "vectorAdd did not print \"Test PASSED\"", log))
            elif state == "failed":
                failures.append(failure(node, "the CUDA check failed (or ran past its deadline)", log))
            elif stuck:
                failures.append(failure(node, f"its pod cannot start ({stuck})", log))
            elif clock() >= deadline:
                phase = pod_status.get("phase") or "not scheduled"
                failures.append(failure(node, f"no result after {timeout_s}s (pod: {phase})", log))
            else:
                continue
            del pending[node]
        if pending:
            sleep(POLL_S)
    return results, failures


def main(environ=os.environ) -> int:
    kubeconfig = yaml.safe_load(environ["JHUB_KUBECONFIG"])
    timeout_s = int(environ.get("JHUB_SMOKE_TIMEOUT", "1800"))
    run_id = environ.get("JHUB_SMOKE_RUN", "manual")[:63]
    expected = tuple(n for n in environ.get("JHUB_GPU_NODES", "").split(",") if n)
    mig_layouts = dict(item.split("=", 1) for item in environ.get("JHUB_MIG_LAYOUTS", "").split(",") if "=" in item)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results, failures = run(Cluster(kubeconfig), timeout_s, run_id, say, expected=expected,
                            mig_layouts=mig_layouts)
    for message in failures:
        say(message)
    if failures:
        return 1
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
