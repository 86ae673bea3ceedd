"""The portal's ServiceAccount has least privilege: every rule of every Role and ClusterRole it is bound to,
walked one by one, grants only what the collector and the pods page call. No `*`, no cluster-admin, pod
deletion only inside a namespace (never by a ClusterRoleBinding)."""

from __future__ import annotations

import pytest

from components.portal import manifests as m
from tests.portal_deploy.deploy_support import manifest_of, portal_children, run_dev

# What the portal's code calls (portal/collector/kube.py, portal/app/services/live_pods.py), per scope.
NAMESPACED = {"pods": {"get", "list", "watch", "delete"}, "persistentvolumeclaims": {"get", "list", "watch"}}
CLUSTER_WIDE = {"nodes": {"get", "list"}, "namespaces": {"get", "list"}, "pods": {"get", "list", "watch"},
                "persistentvolumeclaims": {"get", "list", "watch"}}


def walk(rules: list[dict], allowed: dict[str, set[str]]) -> list[tuple[str, str]]:
    granted = []
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"no resourceNames/nonResourceURLs: {rule}"
        assert rule["apiGroups"] == [""], f"core API group only: {rule}"
        for resource in rule["resources"]:
            assert resource != "*" and "/" not in resource, f"no wildcard or subresource: {rule}"
            for verb in rule["verbs"]:
                assert verb != "*", f"no wildcard verb: {rule}"
                assert verb in allowed.get(resource, set()), f"{verb} {resource} is more than the portal needs"
                granted.append((verb, resource))
    return granted


def test_the_hub_namespace_role_grants_exactly_what_the_portal_calls():
    granted = walk(m.role("jhub")["rules"], NAMESPACED)
    assert sorted(granted) == sorted((v, r) for r, verbs in NAMESPACED.items() for v in verbs)


@pytest.mark.parametrize("user_namespaces", [False, True])
def test_cluster_wide_reads_only(user_namespaces):
    granted = walk(m.cluster_reader_role("jhub", user_namespaces)["rules"], CLUSTER_WIDE)
    assert ("delete", "pods") not in granted
    assert ("list", "nodes") in granted
    assert (("list", "namespaces") in granted) is user_namespaces
    assert (("watch", "pods") in granted) is user_namespaces


def test_the_pod_stopper_deletes_pods_only_and_is_never_bound_cluster_wide():
    granted = walk(m.pod_stopper_role("jhub")["rules"], {"pods": {"get", "delete"}})
    assert sorted(granted) == [("delete", "pods"), ("get", "pods")]


def test_what_the_program_binds(secret_steps):
    run = run_dev(gpuAgent=True)
    objects = [manifest_of(reg) for reg in portal_children(run) if reg.type.startswith("kubernetes:rbac")]
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in ("Role", "ClusterRole")}
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    for binding in bindings:
        ref = binding["roleRef"]
        assert ref["name"] not in ("cluster-admin", "admin", "edit"), "no built-in broad role"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "jhub-portal", "namespace": "jhub"}]
        role = roles[(ref["kind"], ref["name"])]
        if binding["kind"] == "ClusterRoleBinding":
            walk(role["rules"], CLUSTER_WIDE)  # nothing that deletes, cluster-wide
        else:
            assert binding["metadata"]["namespace"] == "jhub"
            walk(role["rules"], NAMESPACED)


@pytest.mark.parametrize("rule", [
    {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]},
    {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"]},
])
def test_the_walk_refuses_broader_rules(rule):
    with pytest.raises(AssertionError):
        walk([rule], CLUSTER_WIDE)
