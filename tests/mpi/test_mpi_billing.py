"""The portal's collector (its own pure code, unchanged) bills the launcher and worker pods of the example MPIJob
to the user, once the portal watches users' namespaces (`user_namespace_prefix: jhub-u-` or
`user_namespace_label: jhub.io/user-namespace=true`) with a pod selector those pods carry
(`pod_label_selector: hub.jupyter.org/username`, which KubeSpawner's notebook pods carry too)."""

from __future__ import annotations

import copy

import pytest
from kubernetes import client

from components.mpi.admission import NAMESPACE_LABEL, USERNAME_KEY
from tests.mpi.test_mpijob_example import example

pytest.importorskip("portal.collector.pods")
from portal.app.services.live_pods import selector_matches  # noqa: E402
from portal.collector.kube import PodSource, WatchScope  # noqa: E402
from portal.collector.pods import PodSpecHints, observe_pod  # noqa: E402

SELECTOR = USERNAME_KEY  # `hub.jupyter.org/username`: the label exists


def operator_pod(replica: str, index: int, user: str = "Alice.Smith", rdma: bool = False) -> dict:
    """A pod as the MPI Operator makes it from the user's template: the template's metadata, its own labels."""
    template = copy.deepcopy(example(user)["spec"]["mpiReplicaSpecs"][replica]["template"])
    meta = template["metadata"]
    meta["labels"].update({"training.kubeflow.org/job-name": "pi",
                           "training.kubeflow.org/job-role": replica.lower()})
    meta.update({"name": f"pi-{replica.lower()}-{index}", "namespace": "jhub-u-alice-smith---2ece8250",
                 "uid": f"uid-{replica}-{index}"})
    if rdma:
        template["spec"]["containers"][0]["resources"]["limits"]["rdma/rdma_shared_device_a"] = "1"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {**template["spec"], "nodeName": "gpu01"},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": template["spec"]["containers"][0]["name"],
                 "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}}}]}}


@pytest.mark.parametrize("replica,index,cpu", [("Launcher", 0, 1.0), ("Worker", 0, 2.0), ("Worker", 1, 2.0)])
def test_each_mpijob_pod_is_observed_as_the_users(replica, index, cpu):
    pod = operator_pod(replica, index)
    assert selector_matches(SELECTOR, pod["metadata"]["labels"])
    seen = observe_pod(pod, hints=PodSpecHints())
    assert seen is not None
    assert (seen.user_name, seen.namespace, seen.cpu_request) == ("Alice.Smith", "jhub-u-alice-smith---2ece8250", cpu)
    assert seen.started_at is not None


def test_rdma_devices_of_a_worker_are_counted():
    seen = observe_pod(operator_pod("Worker", 0, rdma=True), hints=PodSpecHints())
    assert seen.rdma_count == 1


@pytest.mark.parametrize("scope", [WatchScope(user_namespace_prefix="jhub-u-", label_selector=SELECTOR),
                                   WatchScope(user_namespace_label=f"{NAMESPACE_LABEL}=true", label_selector=SELECTOR)])
def test_users_namespaces_are_in_the_collectors_scope(scope):
    source = PodSource(client.ApiClient(), scope, gpu_model_label="nvidia.com/gpu.product")
    source._labelled_namespaces = frozenset({"jhub-u-alice-smith---2ece8250"})  # what its namespace list returns
    assert source.in_scope("jhub-u-alice-smith---2ece8250") and source.in_scope("jhub")
    assert not source.in_scope("kube-system")
    assert scope.cluster_wide
