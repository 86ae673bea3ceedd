"""The Kubernetes objects jhub builds for the hub validate against the real API schemas (Kubernetes 1.32,
the MicroK8s channel the examples use): namespace, cluster-reader RBAC, Secrets, and a user pod with the
volumes, mounts and init container the values give KubeSpawner."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from components.jupyterhub import manifests
from components.jupyterhub.hub_files import HubFile
from components.jupyterhub.storage_values import init_containers, storage_values
from tests.jupyterhub.hubconfigs import STORAGE, THREE_NODES, ONE_NODE, config, settings_of
from tests.support.secrets_for_tests import CERTIFICATE, PRIVATE_KEY

K8S_VERSION = "1.32"


def valid(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


@pytest.mark.parametrize("manifest", [
    manifests.namespace("jhub"),
    manifests.cluster_reader_role("jhub"),
    manifests.cluster_reader_binding("jhub"),
    {**manifests.hub_secret("jhub", {"OAUTH_CLIENT_SECRET": "s"}), "metadata": {"name": "hub-secret-x",
                                                                                "namespace": "jhub"}},
    {**manifests.tls_secret("jhub", CERTIFICATE, PRIVATE_KEY), "metadata": {"name": "tls-x", "namespace": "jhub"}},
    {**manifests.branding_config_map("jhub", HubFile("logo.png", b"\x89PNG")),
     "metadata": {"name": "branding-logo-x", "namespace": "jhub"}},
], ids=["namespace", "cluster-role", "cluster-role-binding", "hub-secret", "tls-secret", "branding-config-map"])
def test_manifest_is_valid(manifest):
    valid(manifest)


def test_a_broken_manifest_is_refused():
    broken = copy.deepcopy(manifests.cluster_reader_binding("jhub"))
    broken["subjects"][0]["namespaces"] = "jhub"  # a typo of "namespace"
    with pytest.raises(kubernetes_validate.ValidationError):
        valid(broken)


def test_cluster_reader_grants_only_reading_nodes_and_pods():
    role = manifests.cluster_reader_role("jhub")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}]
    binding = manifests.cluster_reader_binding("jhub")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub", "namespace": "jhub"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "jhub-jhub-hub-cluster-reader"


def expand(value, username: str):
    """What KubeSpawner does with `{username}` in volumes, mounts and init containers."""
    if isinstance(value, dict):
        return {k: expand(v, username) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, username) for v in value]
    return value.format(username=username) if isinstance(value, str) else value


def user_pod(hub, username="john-doe---1a2b") -> dict:
    storage = storage_values(hub)
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"jupyter-{username}", "namespace": "jhub"},
        "spec": {
            "containers": [{"name": "notebook", "image": hub.default_image.image,
                            "volumeMounts": expand(list(storage["extraVolumeMounts"].values()), username)}],
            "initContainers": expand(init_containers(hub), username),
            "volumes": expand(list(storage["extraVolumes"].values()), username),
        },
    }


@pytest.mark.parametrize("kind", ["shared-hostpath", "nfs"])
def test_user_pod_with_per_user_storage_is_valid(kind):
    hub = settings_of(config(nodes=THREE_NODES, hub={"storage": STORAGE[kind], "sharedStorage": {
        "enabled": True, "hostPath": "/data/shared", "readOnly": True}})).hub
    pod = user_pod(hub)
    valid(pod)
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["jhub-user-storage"]["subPath"] == "john-doe---1a2b"
    assert mounts["jhub-shared-storage"]["readOnly"] is True
    assert mounts["jhub-dev-shm"]["mountPath"] == "/dev/shm"


def test_user_pod_with_local_storage_is_valid():
    hub = settings_of(config(nodes=ONE_NODE, hub={"storage": STORAGE["local"]})).hub
    valid(user_pod(hub))
