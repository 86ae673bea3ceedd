"""The admission policy that makes MPIJob pods billable: valid manifests, and its CEL rules evaluated (cel-python)
against the pods a user's MPIJob makes, with the namespace the hub makes."""

from __future__ import annotations

import sys

import celpy
import kubernetes_validate
import pytest

from components.mpi import admission
from tests.support.program import ROOT

sys.path.insert(0, str(ROOT / "hub"))
from jhub_mpi import namespace_manifest  # noqa: E402  (what the hub creates)

HUB_CFG = {"namespacePrefix": "jhub-u-", "namespaceLabel": admission.NAMESPACE_LABEL}


def evaluate(expression: str, pod: dict, namespace: dict):
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    return program.evaluate({"object": celpy.json_to_cel(pod), "namespaceObject": celpy.json_to_cel(namespace)})


def admitted(pod: dict, namespace: dict) -> list[str]:
    """The messages of the rules the pod breaks (empty: admitted)."""
    failed = []
    for rule in admission.policy("jhub")["spec"]["validations"]:
        if not bool(evaluate(rule["expression"], pod, namespace)):
            failed.append(str(evaluate(rule["messageExpression"], pod, namespace)) if "messageExpression" in rule
                          else rule["message"])
    return failed


def pod(annotations=None, labels=None) -> dict:
    meta = {"name": "pi-worker-0", "namespace": "jhub-u-alice"}
    if annotations is not None:
        meta["annotations"] = annotations
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "w", "image": "x"}]}}


ALICE_NS = namespace_manifest(HUB_CFG, "alice")


def test_policy_selects_the_namespaces_the_hub_labels():
    selector = admission.policy("jhub")["spec"]["matchConstraints"]["namespaceSelector"]["matchLabels"]
    labels = ALICE_NS["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in selector.items())
    assert ALICE_NS["metadata"]["annotations"][admission.USERNAME_KEY] == "alice"


def test_a_pod_marked_for_its_owner_is_admitted():
    assert admitted(pod({admission.USERNAME_KEY: "alice"}, {admission.USERNAME_KEY: "mpi"}), ALICE_NS) == []


@pytest.mark.parametrize("annotations,labels,words", [
    (None, {admission.USERNAME_KEY: "mpi"}, 'must carry the annotation hub.jupyter.org/username: "alice"'),
    ({admission.USERNAME_KEY: "bob"}, {admission.USERNAME_KEY: "mpi"}, 'hub.jupyter.org/username: "alice"'),
    ({"other": "x"}, {admission.USERNAME_KEY: "mpi"}, "must carry the annotation"),
    ({admission.USERNAME_KEY: "alice"}, None, "must carry a label hub.jupyter.org/username"),
    ({admission.USERNAME_KEY: "alice"}, {"app": "pi"}, "must carry a label hub.jupyter.org/username"),
])
def test_unmarked_or_misattributed_pods_are_refused_with_what_to_add(annotations, labels, words):
    messages = admitted(pod(annotations, labels), ALICE_NS)
    assert messages and any(words in m for m in messages), messages
    assert all(m.startswith("pods in jhub-u-alice ") for m in messages)


@pytest.mark.parametrize("manifest", [admission.policy("jhub"), admission.binding("jhub")], ids=lambda m: m["kind"])
def test_admission_manifests_are_valid(manifest):
    kubernetes_validate.validate(manifest, "1.32", strict=True)


def test_program_registers_the_policy_with_mpi(tmp_path):
    from tests.network.netconfigs import config
    from tests.support.program import run_program

    run = run_program(config(mpi={"enabled": True}))
    vap = run.named("mpi-pod-owner-policy")
    assert vap.inputs["spec"]["validations"][0]["expression"] == admission.ANNOTATION_RULE
    assert run.named("mpi-pod-owner-binding").inputs["spec"] == {"policyName": "jhub-jhub-mpi-pod-owner",
                                                                "validationActions": ["Deny"]}


OWNED = {"annotations": {admission.USERNAME_KEY: "alice"}, "labels": {admission.USERNAME_KEY: "mpi"}}


def owned_pod(**spec) -> dict:
    body = pod(**OWNED)
    body["spec"].update(spec)
    return body


def container(**security) -> dict:
    return {"name": "w", "image": "x", "securityContext": security}


@pytest.mark.parametrize("spec,words", [
    ({"hostNetwork": True}, "host's network"),
    ({"hostPID": True}, "host's network, PID"),
    ({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "mount host paths"),
    ({"containers": [container(privileged=True)]}, "privileged containers"),
    ({"containers": [container()], "initContainers": [container(privileged=True)]}, "privileged containers"),
    ({"containers": [container(capabilities={"add": ["IPC_LOCK", "SYS_ADMIN"]})]}, "may add only"),
])
def test_pods_that_would_reach_the_node_are_refused(spec, words):
    messages = admitted(owned_pod(**spec), ALICE_NS)
    assert any(words in m for m in messages), messages


def test_rdma_pods_may_lock_memory():
    spec = {"containers": [container(capabilities={"add": ["IPC_LOCK"]}, privileged=False)],
            "volumes": [{"name": "scratch", "emptyDir": {}}], "hostNetwork": False}
    assert admitted(owned_pod(**spec), ALICE_NS) == []


# -- the guard on the hub's pull-Secret rights (with a build-registry login) -----------------------------------

from components.mpi import rbac  # noqa: E402
from tests.support.vap import refusals, request  # noqa: E402

HUB = admission.hub_username("jhub")  # system:serviceaccount:jhub:hub
GUARD = admission.pull_secret_policy("jhub")
KUBE_SYSTEM = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}
HUB_NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "jhub"}}
NOT_A_USER_NS = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "jhub-u-x", "labels": {admission.NAMESPACE_LABEL: "false"}}}


def secret(name=rbac.PULL_SECRET_NAME, kind="kubernetes.io/dockerconfigjson", namespace="jhub-u-alice") -> dict:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "type": kind}
    if kind == "kubernetes.io/service-account-token":
        body["metadata"]["annotations"] = {"kubernetes.io/service-account.name": "clusterrole-aggregation-controller"}
    else:
        body["data"] = {".dockerconfigjson": "e30="}
    return body


def account(name, namespace="jhub-u-alice") -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace},
            "imagePullSecrets": [{"name": rbac.PULL_SECRET_NAME}]}


def guard(operation, resource, obj, namespace, user=HUB):
    return refusals(GUARD, request(user, operation, resource, obj, namespace), obj, namespace)


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_the_hub_may_write_the_pull_secret_in_a_users_namespace(operation):
    assert guard(operation, "secrets", secret(), ALICE_NS) == []


@pytest.mark.parametrize("name", rbac.PULLING_SERVICE_ACCOUNTS)
def test_the_hub_may_patch_the_pulling_accounts_in_a_users_namespace(name):
    assert guard("UPDATE", "serviceaccounts", account(name), ALICE_NS) == []


@pytest.mark.parametrize("obj,namespace,words", [
    (secret("stolen", "kubernetes.io/service-account-token", "kube-system"), KUBE_SYSTEM,
     ["only in users' namespaces", "only the Secret jhub-registry-pull of type kubernetes.io/dockerconfigjson"]),
    (secret(namespace="kube-system"), KUBE_SYSTEM, ["only in users' namespaces"]),
    (secret(namespace="jhub-u-x"), NOT_A_USER_NS, ["only in users' namespaces"]),
    (secret(kind="kubernetes.io/service-account-token"), ALICE_NS, ["of type kubernetes.io/dockerconfigjson"]),
    (secret(kind="Opaque"), ALICE_NS, ["of type kubernetes.io/dockerconfigjson"]),
    (secret(name="other"), ALICE_NS, ["only the Secret jhub-registry-pull"]),
], ids=["sa-token-in-kube-system", "pull-secret-in-kube-system", "namespace-label-false", "sa-token-in-user-ns",
        "opaque", "other-name"])
def test_any_other_secret_the_hub_writes_outside_its_namespace_is_refused(obj, namespace, words):
    messages = guard("CREATE", "secrets", obj, namespace)
    assert messages and all(any(w in m for m in messages) for w in words), messages


def test_a_secret_without_a_type_is_refused():
    body = secret()
    del body["type"]
    assert guard("CREATE", "secrets", body, ALICE_NS) == [GUARD["spec"]["validations"][1]["message"]]


@pytest.mark.parametrize("obj,namespace,words", [
    (account("default", "kube-system"), KUBE_SYSTEM, "only in users' namespaces"),
    (account("builder"), ALICE_NS, "only the ServiceAccounts jhub-user, default"),
])
def test_service_account_patches_outside_users_namespaces_or_of_other_accounts_are_refused(obj, namespace, words):
    messages = guard("UPDATE", "serviceaccounts", obj, namespace)
    assert messages and any(words in m for m in messages), messages


def test_the_guard_leaves_others_and_the_hubs_own_namespace_alone():
    token = secret("t", "kubernetes.io/service-account-token", "kube-system")
    assert guard("CREATE", "secrets", token, KUBE_SYSTEM, user="system:serviceaccount:kube-system:x") is None
    assert guard("CREATE", "secrets", token, KUBE_SYSTEM, user="system:serviceaccount:other:hub") is None
    # the hub's kubeconfig Secrets (Opaque) live in its own namespace: the chart's Role governs them there
    assert guard("CREATE", "secrets", secret("jhub-mpi-alice", "Opaque", "jhub"), HUB_NS) is None
    assert guard("DELETE", "secrets", secret(namespace="kube-system"), KUBE_SYSTEM) is None  # no such right


@pytest.mark.parametrize("manifest", [admission.pull_secret_policy("jhub"), admission.pull_secret_binding("jhub"),
                                      rbac.hub_role("jhub", pull_secret=True)], ids=lambda m: m["kind"])
def test_pull_secret_manifests_are_valid(manifest):
    kubernetes_validate.validate(manifest, "1.32", strict=True)


def test_only_what_the_copy_needs_is_granted_and_create_is_the_only_right_not_bound_to_a_name():
    plain, pulling = rbac.hub_role("jhub")["rules"], rbac.hub_role("jhub", pull_secret=True)["rules"]
    assert not [r for r in plain if "secrets" in r["resources"]]
    added = [r for r in pulling if r not in plain]
    assert added == rbac.pull_secret_rules()
    unnamed = [(res, v) for r in added if not r.get("resourceNames") for res in r["resources"] for v in r["verbs"]]
    assert unnamed == [("secrets", "create")]  # RBAC cannot name it: the guard above covers it
    assert not any(v in r["verbs"] for r in added for v in ("delete", "list", "watch", "*"))


PULL = rbac.PULL_SECRET_NAME


@pytest.mark.parametrize("spec", [
    {"volumes": [{"name": "login", "secret": {"secretName": PULL}}]},
    {"volumes": [{"name": "login", "projected": {"sources": [{"configMap": {"name": "x"}},
                                                             {"secret": {"name": PULL}}]}}]},
    {"containers": [{"name": "w", "image": "x", "env": [
        {"name": "A", "value": "1"},
        {"name": "L", "valueFrom": {"secretKeyRef": {"name": PULL, "key": ".dockerconfigjson"}}}]}]},
    {"containers": [{"name": "w", "image": "x"}],
     "initContainers": [{"name": "i", "image": "x", "envFrom": [{"secretRef": {"name": PULL}}]}]},
], ids=["secret-volume", "projected-volume", "env-secret-key-ref", "init-env-from"])
def test_no_pod_may_read_the_registry_login(spec):
    messages = admitted(owned_pod(**spec), ALICE_NS)
    assert messages == [f"pods in users' namespaces may not mount or read the Secret {PULL} (the registry login is "
                        "for pulling images only)"], messages


def test_pods_may_pull_with_it_and_mount_other_secrets():
    spec = {"imagePullSecrets": [{"name": PULL}],
            "volumes": [{"name": "ssh", "secret": {"secretName": "pi-ssh"}},
                        {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}],
            "containers": [{"name": "w", "image": "x", "env": [
                {"name": "P", "valueFrom": {"secretKeyRef": {"name": "mine", "key": "k"}}},
                {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "envFrom": [{"configMapRef": {"name": "c"}}, {"secretRef": {"name": "mine"}}]}]}
    assert admitted(owned_pod(**spec), ALICE_NS) == []
