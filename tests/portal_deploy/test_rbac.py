"""The portal's ServiceAccount has least privilege: every rule of every Role and ClusterRole it is bound to,
walked one by one, grants only what the collector, the pods page and the GPU agents' token check call. No
`*`, no cluster-admin, pod deletion only inside a namespace (never by a ClusterRoleBinding); the agents'
own ServiceAccount is bound to nothing."""

from __future__ import annotations

import pytest

from components.portal import manifests as m
from tests.portal_deploy.deploy_support import manifest_of, portal_children, run_dev

# What the portal's code calls (portal/collector/kube.py, portal/app/services/live_pods.py), per scope.
NAMESPACED = {"pods": {"get", "list", "watch", "delete"}, "persistentvolumeclaims": {"get", "list", "watch"}}
CLUSTER_WIDE = {"nodes": {"get", "list"}, "namespaces": {"get", "list"}, "pods": {"get", "list", "watch"},
                "persistentvolumeclaims": {"get", "list", "watch"}}
# portal/app/auth/agents.py: a TokenReview per agent token (and cache bound); nothing else of that group
REVIEWS = {"authentication.k8s.io/tokenreviews": {"create"}}


def walk(rules: list[dict], allowed: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Every (verb, resource) the rules grant, each checked against ``allowed`` (keys: core resources by
    name, others as "<group>/<resource>")."""
    granted = []
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, f"no resourceNames/nonResourceURLs: {rule}"
        assert len(rule["apiGroups"]) == 1 and rule["apiGroups"][0] != "*", f"one named API group: {rule}"
        group = rule["apiGroups"][0]
        for resource in rule["resources"]:
            assert resource != "*" and "/" not in resource, f"no wildcard or subresource: {rule}"
            name = f"{group}/{resource}" if group else resource
            for verb in rule["verbs"]:
                assert verb != "*", f"no wildcard verb: {rule}"
                assert verb in allowed.get(name, set()), f"{verb} {name} is more than the portal needs"
                granted.append((verb, name))
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


def test_the_token_reviewer_creates_tokenreviews_and_nothing_else():
    role = m.token_reviewer_role("jhub")
    assert role["metadata"]["name"] == "jhub-jhub-portal-token-reviewer"
    assert walk(role["rules"], REVIEWS) == [("create", "authentication.k8s.io/tokenreviews")]
    with pytest.raises(AssertionError):  # not what the collector may do, and not subjectaccessreviews
        walk(role["rules"], CLUSTER_WIDE)
    with pytest.raises(AssertionError):
        walk([{"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}],
             REVIEWS)


@pytest.mark.parametrize("agents", [True, False])
def test_what_the_program_binds(secret_steps, agents):
    run = run_dev(gpuAgent=agents)
    objects = [manifest_of(reg) for reg in portal_children(run) if reg.type.startswith("kubernetes:rbac")]
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in ("Role", "ClusterRole")}
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert bindings
    granted = []
    for binding in bindings:
        ref = binding["roleRef"]
        assert ref["name"] not in ("cluster-admin", "admin", "edit", "system:auth-delegator"), "no built-in role"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "jhub-portal", "namespace": "jhub"}]
        role = roles[(ref["kind"], ref["name"])]
        if binding["kind"] == "ClusterRoleBinding":
            granted += walk(role["rules"], {**CLUSTER_WIDE, **REVIEWS})  # nothing that deletes, cluster-wide
        else:
            assert binding["metadata"]["namespace"] == "jhub"
            granted += walk(role["rules"], NAMESPACED)
    # the TokenReviews come with the agents, whose tokens they check; without agents, none
    assert (("create", "authentication.k8s.io/tokenreviews") in granted) is agents
    accounts = [manifest_of(r) for r in portal_children(run) if r.type == "kubernetes:core/v1:ServiceAccount"]
    assert sorted(a["metadata"]["name"] for a in accounts) == ["jhub-portal"] + (["jhub-portal-gpu-agent"] if agents
                                                                                else [])


@pytest.mark.parametrize("rule", [
    {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]},
    {"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"]},
    {"apiGroups": ["", "authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create", "get"]},
])
def test_the_walk_refuses_broader_rules(rule):
    with pytest.raises(AssertionError):
        walk([rule], {**CLUSTER_WIDE, **REVIEWS})
