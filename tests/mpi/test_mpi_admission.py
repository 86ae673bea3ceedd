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
