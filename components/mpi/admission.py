"""The admission rule that makes every pod in a user's MPI namespace billable to that user (pure manifests).

The portal's collector bills a pod to the user its `hub.jupyter.org/username` annotation names (the way
KubeSpawner marks notebook pods), and selects pods by label. MPIJob pods are made by the MPI Operator from the
user's own template, so nothing marks them unless the template does: a ValidatingAdmissionPolicy (GA since
Kubernetes 1.30) admits a pod into a namespace labelled `<NAMESPACE_LABEL>: "true"` only when its annotation
names the namespace's owner (the hub annotates the namespace at spawn time) and it carries the label. A user
can neither skip billing nor bill someone else; a template without them fails with a message that says what
to add (docs/mpijob-example.yaml has both).
"""

from __future__ import annotations

from ..jupyterhub.manifests import MANAGED_BY

NAMESPACE_LABEL = "jhub.io/user-namespace"  # set "true" by the hub on every user's namespace
USERNAME_KEY = "hub.jupyter.org/username"  # the collector's user annotation (and the label it selects on)
API = "admissionregistration.k8s.io/v1"

ANNOTATION_RULE = (
    f"has(object.metadata.annotations) && '{USERNAME_KEY}' in object.metadata.annotations && "
    f"object.metadata.annotations['{USERNAME_KEY}'] == namespaceObject.metadata.annotations['{USERNAME_KEY}']"
)
ANNOTATION_MESSAGE = (
    f"'pods in ' + namespaceObject.metadata.name + ' must carry the annotation {USERNAME_KEY}: \"' + "
    f"namespaceObject.metadata.annotations['{USERNAME_KEY}'] + '\" (the usage portal bills them to you; "
    "see the MPIJob example in the jhub docs)'"
)
LABEL_RULE = f"has(object.metadata.labels) && '{USERNAME_KEY}' in object.metadata.labels"
LABEL_MESSAGE = (
    f"'pods in ' + namespaceObject.metadata.name + ' must carry a label {USERNAME_KEY} (any value; the usage "
    "portal finds them by it)'"
)


def policy_name(hub_namespace: str) -> str:
    return f"jhub-{hub_namespace}-mpi-pod-owner"


def _meta(name: str) -> dict:
    return {"name": name, "labels": {**MANAGED_BY, "app.kubernetes.io/component": "mpi"}}


def policy(hub_namespace: str) -> dict:
    return {
        "apiVersion": API, "kind": "ValidatingAdmissionPolicy", "metadata": _meta(policy_name(hub_namespace)),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "true"}},
                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                   "resources": ["pods"]}],
            },
            "validations": [
                {"expression": ANNOTATION_RULE, "messageExpression": ANNOTATION_MESSAGE, "reason": "Forbidden"},
                {"expression": LABEL_RULE, "messageExpression": LABEL_MESSAGE, "reason": "Forbidden"},
            ],
        },
    }


def binding(hub_namespace: str) -> dict:
    name = policy_name(hub_namespace)
    return {"apiVersion": API, "kind": "ValidatingAdmissionPolicyBinding", "metadata": _meta(name),
            "spec": {"policyName": name, "validationActions": ["Deny"]}}
