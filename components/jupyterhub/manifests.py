"""Kubernetes objects the JupyterHub component creates next to the chart, as plain manifests.

Secret values are passed in by the caller (Pulumi secrets in the component, test strings in tests), so the
same builder serves both and the manifests are validated against the real API schemas.
"""

from __future__ import annotations

import json

from typing import Any

from .chart import HUB_SERVICE_ACCOUNT

MANAGED_BY = {"app.kubernetes.io/managed-by": "jhub", "app.kubernetes.io/part-of": "jhub"}


def _meta(name: str | None, namespace: str | None = None, component: str = "hub") -> dict:
    meta: dict[str, Any] = {"labels": {**MANAGED_BY, "app.kubernetes.io/component": component}}
    if name is not None:
        meta["name"] = name
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, component="namespace")}


def cluster_reader_name(namespace_name: str) -> str:
    """Cluster-wide objects are named after the namespace, so two hubs on one cluster never collide."""
    return f"jhub-{namespace_name}-hub-cluster-reader"


def cluster_reader_role(namespace_name: str) -> dict:
    """Read access to nodes and pods everywhere: the spawn form computes free capacity from a watch of them."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(cluster_reader_name(namespace_name)),
        "rules": [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]}],
    }


def cluster_reader_binding(namespace_name: str) -> dict:
    name = cluster_reader_name(namespace_name)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": HUB_SERVICE_ACCOUNT, "namespace": namespace_name}],
    }


def hub_secret(namespace_name: str, env: dict[str, Any]) -> dict:
    """The hub's secret environment (client secret, bind password, portal token...). Unnamed: Pulumi gives it
    a fresh name whenever its data changes, so the release changes too and the hub restarts with it."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(None, namespace_name), "type": "Opaque",
            "stringData": dict(sorted(env.items()))}


def registry_login(host: str, username: str, password: str) -> str:
    """`.dockerconfigjson` of one registry login (what the kubelet reads from an image pull secret)."""
    import base64

    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}}}, sort_keys=True, separators=(",", ":"))


def registry_pull_secret(namespace_name: str, dockerconfigjson: Any) -> dict:
    """The login for pulls from jhub:offline.buildRegistry, named by the pods that run its images (the spawned
    servers, the pre-puller, the portal). Unnamed: a new login gets a new name, and the pods follow."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(None, namespace_name, "registry"),
            "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": dockerconfigjson}}


def branding_config_map(namespace_name: str, item) -> dict:
    """One branding file (logo or favicon) as `binaryData`. Unnamed: a new file gets a new name, so the
    release changes and the hub restarts with it. At most 512 KiB of file (hub_checks), under 1 MiB."""
    import base64

    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(None, namespace_name, "branding"),
            "binaryData": {item.path: base64.b64encode(item.content).decode("ascii")}}


def tls_secret(namespace_name: str, certificate: Any, key: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(None, namespace_name, "tls"),
            "type": "kubernetes.io/tls", "stringData": {"tls.crt": certificate, "tls.key": key}}
