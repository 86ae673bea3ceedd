"""The admission rule that makes every pod in a user's MPI namespace billable to that user (pure manifests).

The portal's collector bills a pod to the user its `hub.jupyter.org/username` annotation names (the way
KubeSpawner marks notebook pods), and selects pods by label. MPIJob pods are made by the MPI Operator from the
user's own template, so nothing marks them unless the template does: a ValidatingAdmissionPolicy (GA since
Kubernetes 1.30) admits a pod into a namespace labelled `<NAMESPACE_LABEL>: "true"` only when its annotation
names the namespace's owner (the hub annotates the namespace at spawn time) and it carries the label. A user
can neither skip billing nor bill someone else; a template without them fails with a message that says what
to add (docs/mpijob-example.yaml has both).

The same policy keeps a user's pods off the node itself: an MPIJob template is the user's own pod spec, and the
MPI Operator (not the user) creates the pods, so without a rule any user could run a privileged pod, mount a
host path or join the host's network. It refuses those as Pod Security "baseline" does, but lets a container
add `IPC_LOCK`, which RDMA needs (baseline would refuse it). Nor may a pod mount or read the registry pull
Secret the hub copies there (rbac.py): it is the kubelet's, for pulls, and never the user's to read.

With a build-registry login a second policy (`pull_secret_policy`) guards the Secret-create right the hub then
holds cluster-wide: see rbac.py for why and what it allows.
"""

from __future__ import annotations

from ..jupyterhub.chart import HUB_SERVICE_ACCOUNT
from ..jupyterhub.manifests import MANAGED_BY
from .rbac import PULL_SECRET_NAME, PULLING_SERVICE_ACCOUNTS

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


# Pod Security "baseline"'s allowed capabilities, and IPC_LOCK (RDMA pins memory).
ALLOWED_CAPABILITIES = ("AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "IPC_LOCK", "KILL", "MKNOD",
                        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")


def _every_container(condition: str) -> str:
    """`condition` (about a container `c`) holds for every container and init container."""
    return (f"object.spec.containers.all(c, {condition}) && "
            f"(!has(object.spec.initContainers) || object.spec.initContainers.all(c, {condition}))")


HOST_RULE = ("(!has(object.spec.hostNetwork) || !object.spec.hostNetwork) && "
             "(!has(object.spec.hostPID) || !object.spec.hostPID) && "
             "(!has(object.spec.hostIPC) || !object.spec.hostIPC) && "
             "(!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath)))")
PRIVILEGED_RULE = _every_container(
    "!has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged")
# The registry login copied into users' namespaces (rbac.py) is the kubelet's, to pull: no pod may read it.
_NOT_PULL_SECRET = f"!= '{PULL_SECRET_NAME}'"
PULL_SECRET_USE_RULE = (
    "(!has(object.spec.volumes) || object.spec.volumes.all(v, "
    f"(!has(v.secret) || !has(v.secret.secretName) || v.secret.secretName {_NOT_PULL_SECRET}) && "
    "(!has(v.projected) || !has(v.projected.sources) || v.projected.sources.all(s, "
    f"!has(s.secret) || !has(s.secret.name) || s.secret.name {_NOT_PULL_SECRET})))) && "
    + _every_container(
        "(!has(c.env) || c.env.all(e, !has(e.valueFrom) || !has(e.valueFrom.secretKeyRef) || "
        f"!has(e.valueFrom.secretKeyRef.name) || e.valueFrom.secretKeyRef.name {_NOT_PULL_SECRET})) && "
        "(!has(c.envFrom) || c.envFrom.all(f, !has(f.secretRef) || !has(f.secretRef.name) || "
        f"f.secretRef.name {_NOT_PULL_SECRET}))"))
CAPABILITIES_RULE = _every_container(
    "!has(c.securityContext) || !has(c.securityContext.capabilities) || "
    "!has(c.securityContext.capabilities.add) || "
    "c.securityContext.capabilities.add.all(x, x in [" + ", ".join(f"'{c}'" for c in ALLOWED_CAPABILITIES) + "])")


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
                {"expression": HOST_RULE, "reason": "Forbidden",
                 "message": "pods in users' namespaces may not use the host's network, PID or IPC namespace, "
                            "or mount host paths"},
                {"expression": PRIVILEGED_RULE, "reason": "Forbidden",
                 "message": "pods in users' namespaces may not run privileged containers"},
                {"expression": PULL_SECRET_USE_RULE, "reason": "Forbidden",
                 "message": f"pods in users' namespaces may not mount or read the Secret {PULL_SECRET_NAME} "
                            "(the registry login is for pulling images only)"},
                {"expression": CAPABILITIES_RULE, "reason": "Forbidden",
                 "message": "pods in users' namespaces may add only these capabilities: "
                            + ", ".join(ALLOWED_CAPABILITIES)},
            ],
        },
    }


def binding(hub_namespace: str) -> dict:
    name = policy_name(hub_namespace)
    return {"apiVersion": API, "kind": "ValidatingAdmissionPolicyBinding", "metadata": _meta(name),
            "spec": {"policyName": name, "validationActions": ["Deny"]}}


# -- the guard on the hub's pull-Secret rights (rbac.pull_secret_rules) ----------------------------------------

def hub_username(hub_namespace: str) -> str:
    return f"system:serviceaccount:{hub_namespace}:{HUB_SERVICE_ACCOUNT}"


def pull_secret_policy_name(hub_namespace: str) -> str:
    return f"jhub-{hub_namespace}-hub-pull-secret"


USER_NAMESPACE_RULE = (f"has(namespaceObject.metadata.labels) && "
                       f"'{NAMESPACE_LABEL}' in namespaceObject.metadata.labels && "
                       f"namespaceObject.metadata.labels['{NAMESPACE_LABEL}'] == 'true'")
PULL_SECRET_RULE = ("request.resource.resource != 'secrets' || (has(object.type) && "
                    f"object.type == 'kubernetes.io/dockerconfigjson' && object.metadata.name == '{PULL_SECRET_NAME}')")
SERVICE_ACCOUNT_RULE = ("request.resource.resource != 'serviceaccounts' || object.metadata.name in ["
                        + ", ".join(f"'{n}'" for n in PULLING_SERVICE_ACCOUNTS) + "]")


def pull_secret_policy(hub_namespace: str) -> dict:
    """Only with a build-registry login (see rbac.py): the hub's ServiceAccount may create or update Secrets,
    and update ServiceAccounts, outside its own namespace only as copying the pull Secret needs."""
    return {
        "apiVersion": API, "kind": "ValidatingAdmissionPolicy",
        "metadata": _meta(pull_secret_policy_name(hub_namespace)),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                # in its own namespace the chart's Role governs the hub (its kubeconfig Secrets live there)
                "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                            "operator": "NotIn", "values": [hub_namespace]}]},
                "resourceRules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                     "resources": ["secrets"]},
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
                     "resources": ["serviceaccounts"]},
                ],
            },
            "matchConditions": [{"name": "hub-service-account",
                                 "expression": f"request.userInfo.username == '{hub_username(hub_namespace)}'"}],
            "validations": [
                {"expression": USER_NAMESPACE_RULE, "reason": "Forbidden",
                 "message": f"the hub may write Secrets and ServiceAccounts only in users' namespaces "
                            f"(labelled {NAMESPACE_LABEL}: \"true\")"},
                {"expression": PULL_SECRET_RULE, "reason": "Forbidden",
                 "message": f"the hub may write only the Secret {PULL_SECRET_NAME} of type "
                            "kubernetes.io/dockerconfigjson in users' namespaces"},
                {"expression": SERVICE_ACCOUNT_RULE, "reason": "Forbidden",
                 "message": "the hub may update only the ServiceAccounts " + ", ".join(PULLING_SERVICE_ACCOUNTS)
                            + " in users' namespaces"},
            ],
        },
    }


def pull_secret_binding(hub_namespace: str) -> dict:
    name = pull_secret_policy_name(hub_namespace)
    return {"apiVersion": API, "kind": "ValidatingAdmissionPolicyBinding", "metadata": _meta(name),
            "spec": {"policyName": name, "validationActions": ["Deny"]}}
