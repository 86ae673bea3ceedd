"""RBAC the program registers for per-user MPI namespaces (pure manifests).

Two ClusterRoles, named after the hub's namespace so two hubs on one cluster never collide:

* `jhub-<ns>-mpi-user`: what a user's ServiceAccount may do. The hub binds it with a RoleBinding *inside the
  user's namespace*, so it grants MPIJobs, pods and pods/log there and nowhere else.
* `jhub-<ns>-hub-mpi`: what the hub needs to set a user up, and no more: create namespaces, ServiceAccounts,
  RoleBindings and ResourceQuotas; request tokens only for the users' ServiceAccount name; update only the
  quota it names; and `bind` only the user role above and, with the portal, the portal's pod-stopper
  ClusterRole (RBAC's escalation check lets the hub create a RoleBinding to a role it does not hold itself
  only with `bind` on exactly that role). The hub binds the pod-stopper to the portal's ServiceAccount in
  each user's namespace, so the portal's admin "delete pod" works there too (`portal_pod_stopper`).

With a build-registry login (`jhub:offline.buildRegistry` + `buildRegistryUsername`), the images users run in
their namespace (the site's notebook images, the normal case for an MPIJob) need a pull Secret there: the hub
copies the hub namespace's pull Secret into each user's namespace as `PULL_SECRET_NAME` and names it in the
`imagePullSecrets` of the user's ServiceAccount and of the namespace's `default` one (the MPI Operator's pods
run as the template's `serviceAccountName`, most often `default`). For that, and only then, the hub's role
also gets (`pull_secret_rules`):

* `get` and `update` on Secrets named `PULL_SECRET_NAME`, and `patch` on the ServiceAccounts named
  `USER_SERVICE_ACCOUNT` and `default` (it may `get` them already): RBAC restricts these by name;
* `create` on Secrets, which RBAC cannot restrict by name (the name is not known when it authorizes a create).
  Cluster-wide Secret create is dangerous on its own: a `kubernetes.io/service-account-token` Secret in
  kube-system would hand the hub a token of any ServiceAccount there (and `default`, which it may patch,
  is in every namespace). So a ValidatingAdmissionPolicy (`admission.pull_secret_policy`) refuses every Secret create or
  update and every ServiceAccount update by the hub's ServiceAccount outside its own namespace unless the
  namespace is labelled as a user namespace, the Secret is of type `kubernetes.io/dockerconfigjson` with
  the name `PULL_SECRET_NAME`, and the ServiceAccount is one of the two above. The hub may not label a
  namespace (it may create namespaces, not update them), so it cannot turn kube-system into a user
  namespace. Inside its own namespace the chart's Role governs the hub, as before.

A user cannot read the copy: their role has no Secrets, and the pod policy (`admission.policy`) refuses a pod
that mounts it or takes it into its environment; only the kubelet uses it, to pull.
"""

from __future__ import annotations

from ..jupyterhub.chart import HUB_SERVICE_ACCOUNT
from ..jupyterhub.manifests import MANAGED_BY

USER_SERVICE_ACCOUNT = "jhub-user"  # in each user's namespace
QUOTA_NAME = "jhub-user-quota"
PULL_SECRET_NAME = "jhub-registry-pull"  # the build registry's login, copied into each user's namespace
PULLING_SERVICE_ACCOUNTS = (USER_SERVICE_ACCOUNT, "default")  # the hub adds the pull Secret to these
RBAC_API = "rbac.authorization.k8s.io/v1"


def user_role_name(hub_namespace: str) -> str:
    return f"jhub-{hub_namespace}-mpi-user"


def hub_role_name(hub_namespace: str) -> str:
    return f"jhub-{hub_namespace}-hub-mpi"


def _meta(name: str) -> dict:
    return {"name": name, "labels": {**MANAGED_BY, "app.kubernetes.io/component": "mpi"}}


def user_role(hub_namespace: str) -> dict:
    return {
        "apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": _meta(user_role_name(hub_namespace)),
        "rules": [
            {"apiGroups": ["kubeflow.org"], "resources": ["mpijobs"],
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
            {"apiGroups": ["kubeflow.org"], "resources": ["mpijobs/status"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete", "get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
        ],
    }


def portal_pod_stopper(hub_namespace: str, portal_enabled: bool) -> dict | None:
    """The portal's pod-stopper ClusterRole and the ServiceAccount to bind it to in each user's namespace
    (custom.jhub.mpi.portalPodStopper); None without the portal. The portal runs in the hub's namespace."""
    if not portal_enabled:
        return None
    from ..portal import images as portal_images
    from ..portal.manifests import cluster_role_name

    return {"clusterRole": cluster_role_name(hub_namespace, "pod-stopper"), "namespace": hub_namespace,
            "serviceAccount": portal_images.PORTAL}


def pull_secret_rules() -> list[dict]:
    """What copying the pull Secret into users' namespaces needs (see the module's docstring)."""
    return [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},  # guarded by admission.py
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "update"], "resourceNames": [PULL_SECRET_NAME]},
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["patch"],
         "resourceNames": list(PULLING_SERVICE_ACCOUNTS)},
    ]


def hub_role(hub_namespace: str, portal_enabled: bool = False, pull_secret: bool = False) -> dict:
    stopper = portal_pod_stopper(hub_namespace, portal_enabled)
    bindable = [user_role_name(hub_namespace)] + ([stopper["clusterRole"]] if stopper else [])
    return {
        "apiVersion": RBAC_API, "kind": "ClusterRole", "metadata": _meta(hub_role_name(hub_namespace)),
        "rules": [
            {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create", "get"]},
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create", "get"]},
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
             "resourceNames": [USER_SERVICE_ACCOUNT]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["create", "get"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
             "resourceNames": bindable},
            {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["get", "patch", "update"],
             "resourceNames": [QUOTA_NAME]},
        ] + (pull_secret_rules() if pull_secret else []),
    }


def hub_binding(hub_namespace: str) -> dict:
    name = hub_role_name(hub_namespace)
    return {
        "apiVersion": RBAC_API, "kind": "ClusterRoleBinding", "metadata": _meta(name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": HUB_SERVICE_ACCOUNT, "namespace": hub_namespace}],
    }


def manifests(hub_namespace: str, portal_enabled: bool = False, pull_secret: bool = False) -> list[dict]:
    return [user_role(hub_namespace), hub_role(hub_namespace, portal_enabled, pull_secret),
            hub_binding(hub_namespace)]
