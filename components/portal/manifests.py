"""The portal's Kubernetes objects as plain manifests (pure: settings and names in, dicts out).

Secret values are passed in by the caller (Pulumi secrets in the component, test strings in tests). Every
pod runs as a non-root user on a read-only root filesystem with all capabilities dropped, except the GPU
agent, which runs as root to reach the kubelet's socket (see `agent_daemonset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from . import images as im

HUB_ACCESS_LABEL = "hub.jupyter.org/network-access-hub"
MANAGED_BY = {"app.kubernetes.io/managed-by": "jhub", "app.kubernetes.io/part-of": "jhub"}
COMPONENT = "app.kubernetes.io/component"


def _labels(component: str) -> dict:
    return {**MANAGED_BY, COMPONENT: component, "app.kubernetes.io/name": "jhub-portal"}


def _selector(component: str) -> dict:
    return {COMPONENT: component, "app.kubernetes.io/name": "jhub-portal"}


def _meta(name: Optional[str], namespace: Optional[str], component: str) -> dict:
    meta: dict[str, Any] = {"labels": _labels(component)}
    if name is not None:
        meta["name"] = name
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def _env(plain: dict[str, str], secret_name: Optional[str] = None, secret_keys: tuple[str, ...] = (),
         secret_aliases: tuple[tuple[str, str], ...] = ()) -> list:
    """Plain values, then each secret key by reference (never by value), and (variable, key) pairs that read a
    key under another name; sorted by name."""
    env = [{"name": k, "value": v} for k, v in plain.items()]
    refs = [(k, k) for k in secret_keys] + list(secret_aliases)
    env += [{"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}} for name, key in refs]
    return sorted(env, key=lambda item: item["name"])


def _locked_down(uid: int, gid: Optional[int] = None) -> dict:
    gid = uid if gid is None else gid
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False,
            "readOnlyRootFilesystem": True, "runAsGroup": gid, "runAsNonRoot": True, "runAsUser": uid}


def _pod_security(uid: int, gid: Optional[int] = None) -> dict:
    gid = uid if gid is None else gid
    return {"fsGroup": gid, "runAsGroup": gid, "runAsNonRoot": True, "runAsUser": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


# -- PostgreSQL ---------------------------------------------------------------------------------------

DB_SECRET_KEY = "POSTGRES_PASSWORD"
PGDATA = "/var/lib/postgresql/data/pgdata"  # a folder inside the claim, so initdb owns it
# An existing database keeps the password it was made with; this sets it to the Secret's on every start (a
# new stack after `pulumi destroy` generates a new password, and the retained volume must follow it).
# Single-user mode, no network; the password is hex, so it needs no quoting.
SET_PASSWORD = ('set -eu; if [ -s "$PGDATA/PG_VERSION" ]; then '
                'printf "ALTER ROLE %s WITH PASSWORD \'%s\';\\n" "$POSTGRES_USER" "$POSTGRES_PASSWORD" | '
                'postgres --single -D "$PGDATA" -c listen_addresses= "$POSTGRES_DB" >/dev/null; '
                'echo "password of role $POSTGRES_USER set from the Secret"; '
                'else echo "new database: initdb sets the password"; fi')


def db_secret(namespace: str, password: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(im.DB, namespace, "portal-db"),
            "type": "Opaque", "stringData": {DB_SECRET_KEY: password}}


def database_url(namespace: str, password: str) -> str:
    return f"postgresql+psycopg://{im.DB_USER}:{password}@{im.DB}.{namespace}.svc:{im.DB_PORT}/{im.DB_NAME}"


def db_service(namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(im.DB, namespace, "portal-db"),
            "spec": {"clusterIP": "None", "selector": _selector("portal-db"),
                     "ports": [{"name": "postgres", "port": im.DB_PORT, "targetPort": "postgres"}]}}


def db_statefulset(namespace: str, size: str, storage_class: Optional[str]) -> dict:
    env = _env({"PGDATA": PGDATA, "POSTGRES_DB": im.DB_NAME, "POSTGRES_USER": im.DB_USER}, im.DB, (DB_SECRET_KEY,))
    mounts = [{"name": "data", "mountPath": "/var/lib/postgresql/data"},
              {"name": "run", "mountPath": "/var/run/postgresql"}, {"name": "tmp", "mountPath": "/tmp"}]
    ready = ["pg_isready", "-h", "127.0.0.1", "-p", str(im.DB_PORT), "-U", im.DB_USER, "-d", im.DB_NAME]
    claim_spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        claim_spec["storageClassName"] = storage_class
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta(im.DB, namespace, "portal-db"),
        "spec": {
            "serviceName": im.DB, "replicas": 1, "selector": {"matchLabels": _selector("portal-db")},
            # The claim outlives the StatefulSet (and `pulumi destroy`): the namespace is kept too.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": _labels("portal-db")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": _pod_security(im.POSTGRES_UID),
                    "initContainers": [{
                        "name": "set-password", "image": im.POSTGRES_IMAGE, "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", SET_PASSWORD], "env": env, "volumeMounts": mounts,
                        "securityContext": _locked_down(im.POSTGRES_UID),
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                    }],
                    "containers": [{
                        "name": "postgres", "image": im.POSTGRES_IMAGE, "imagePullPolicy": "IfNotPresent",
                        "env": env, "volumeMounts": mounts,
                        "ports": [{"name": "postgres", "containerPort": im.DB_PORT}],
                        "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 10, "timeoutSeconds": 5},
                        "livenessProbe": {"exec": {"command": ready}, "initialDelaySeconds": 30,
                                          "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 6},
                        "securityContext": _locked_down(im.POSTGRES_UID),
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                      "limits": {"memory": "1Gi"}},
                    }],
                    "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": _labels("portal-db")},
                                      "spec": claim_spec}],
        },
    }


def db_network_policy(namespace: str) -> dict:
    """Only the portal's pods (its migrate init container included) reach PostgreSQL."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(im.DB, namespace, "portal-db"),
            "spec": {"podSelector": {"matchLabels": _selector("portal-db")}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": _selector("portal")}}],
                                  "ports": [{"port": im.DB_PORT, "protocol": "TCP"}]}]}}


# -- the portal -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PortalPod:
    namespace: str
    control_plane: str  # node name: the portal's hostPort is on this node
    host_port: int  # jhub:portal.nodePort
    env: dict[str, str]  # plain PORTAL_* values (env.py)
    secret_name: str  # the Secret with env.SECRET_KEYS
    secret_keys: tuple[str, ...]
    storage_host_path: Optional[str] = None  # shared-hostpath base of the users' storage
    # With the storage view: the users' uid:gid (jhub:hub.userUid/userGid), the owner of every file there, so
    # that removing an idle folder works without root; else the image's own user.
    storage_owner: Optional[tuple[int, int]] = None
    source_digest: str = ""  # of portal/: a new build rolls the pod even when the tag stays
    image: str = im.PORTAL_IMAGE  # with jhub:offline.buildRegistry: the pushed image, pinned by digest
    image_pull_secret: str = ""  # ... and the Secret with its login, when it has one
    secret_aliases: tuple[tuple[str, str], ...] = ()  # (variable, Secret key) read under another name


def service_account(namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(im.PORTAL, namespace, "portal"),
            "automountServiceAccountToken": True}


POD_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete", "get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "watch"]},
]


def role(namespace: str) -> dict:
    """In the hub's namespace: watch user pods, stop them (the pods page), read their storage claims."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": _meta(im.PORTAL, namespace, "portal"), "rules": POD_RULES}


def role_binding(namespace: str, name: str, role_kind: str, role_name: str, subject_namespace: str) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": _meta(name, namespace, "portal"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": im.PORTAL, "namespace": subject_namespace}]}


def cluster_role_name(namespace: str, what: str) -> str:
    """Cluster-wide objects carry the hub's namespace, so two stacks on one cluster never collide."""
    return f"jhub-{namespace}-portal-{what}"


def cluster_reader_role(namespace: str, user_namespaces: bool) -> dict:
    """Cluster-wide reads: nodes (GPU models and capacity). With per-user namespaces the collector lists
    pods and claims of every namespace and keeps those of namespaces carrying the user-namespace label
    (Kubernetes RBAC cannot grant a list by namespace label), so it also reads namespaces, pods and claims."""
    rules = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]
    if user_namespaces:
        rules += [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]},
                  {"apiGroups": [""], "resources": ["persistentvolumeclaims", "pods"],
                   "verbs": ["get", "list", "watch"]}]
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": _meta(cluster_role_name(namespace, "reader"), None, "portal"), "rules": rules}


def pod_stopper_role(namespace: str) -> dict:
    """Deleting user pods, granted per namespace: the hub's (RoleBinding here) and each user namespace, where
    the hub binds this ClusterRole with a RoleBinding when it creates it (hub/jhub_mpi.py; never cluster-wide)."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": _meta(cluster_role_name(namespace, "pod-stopper"), None, "portal"),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete", "get"]}]}


def cluster_reader_binding(namespace: str) -> dict:
    return cluster_binding(namespace, "reader")


def token_reviewer_role(namespace: str) -> dict:
    """Reviewing the GPU agents' ServiceAccount tokens (auth/agents.py): create tokenreviews, and nothing else."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": _meta(cluster_role_name(namespace, "token-reviewer"), None, "portal"),
            "rules": [{"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}]}


def cluster_binding(namespace: str, what: str) -> dict:
    """Binds the portal's ServiceAccount to its ClusterRole ``what`` (reader, token-reviewer)."""
    name = cluster_role_name(namespace, what)
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": _meta(name, None, "portal"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": im.PORTAL, "namespace": namespace}]}


def portal_secret(namespace: str, values: dict[str, Any]) -> dict:
    """The portal's secret environment. Unnamed: Pulumi names it afresh when its data changes, so the
    Deployment changes with it and the pod restarts on the new values."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(None, namespace, "portal"), "type": "Opaque",
            "stringData": dict(sorted(values.items()))}


def _owner(pod: PortalPod) -> tuple[int, int]:
    return pod.storage_owner if pod.storage_host_path and pod.storage_owner else (im.PORTAL_UID, im.PORTAL_UID)


def _portal_container(pod: PortalPod, name: str, args: list[str], mounts: list[dict]) -> dict:
    return {"name": name, "image": pod.image, "imagePullPolicy": "IfNotPresent", "args": args,
            "env": _env(pod.env, pod.secret_name, pod.secret_keys, pod.secret_aliases), "volumeMounts": mounts,
            "securityContext": _locked_down(*_owner(pod))}


def portal_deployment(pod: PortalPod) -> dict:
    mounts = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict] = [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]
    if pod.storage_host_path:
        mounts.append({"name": "storage", "mountPath": im.STORAGE_MOUNT})
        volumes.append({"name": "storage", "hostPath": {"path": pod.storage_host_path, "type": "Directory"}})
    # Migrations: an init container, so the schema is current before this pod's portal serves. With one
    # replica and the Recreate strategy exactly one migrate runs per upgrade (an unchanged schema is a no-op).
    migrate = _portal_container(pod, "migrate", ["migrate"], [{"name": "tmp", "mountPath": "/tmp"}])
    migrate["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
    portal = _portal_container(pod, "portal", ["serve"], mounts)
    http = {"port": "http", "path": "/healthz"}
    portal.update({
        # hostPort: browsers open http://<control plane>:<nodePort> (see README, "Portal"): 29781 lies
        # outside the NodePort range, and the hostPort needs no change to the API server's flags.
        "ports": [{"name": "http", "containerPort": im.PORT, "hostPort": pod.host_port, "protocol": "TCP"}],
        "startupProbe": {"httpGet": http, "periodSeconds": 2, "failureThreshold": 60},
        "livenessProbe": {"httpGet": http, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {"httpGet": {"port": "http", "path": "/readyz"}, "periodSeconds": 10,
                           "timeoutSeconds": 5, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    })
    annotations = {"jhub.io/portal-source": pod.source_digest} if pod.source_digest else {}
    # The chart's hub NetworkPolicy admits pods with this label: the portal calls the hub's API (OAuth, users).
    template_meta: dict[str, Any] = {"labels": {**_labels("portal"), HUB_ACCESS_LABEL: "true"}}
    if annotations:
        template_meta["annotations"] = annotations
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(im.PORTAL, pod.namespace, "portal"),
        "spec": {
            "replicas": 1, "selector": {"matchLabels": _selector("portal")},
            "strategy": {"type": "Recreate"},  # the hostPort is held by one pod at a time
            "template": {"metadata": template_meta, "spec": {
                "serviceAccountName": im.PORTAL,
                "enableServiceLinks": False,
                "nodeSelector": {"kubernetes.io/hostname": pod.control_plane},
                "securityContext": _pod_security(*_owner(pod)),
                "initContainers": [migrate],
                "containers": [portal],
                "volumes": volumes,
                **_pull_secrets(pod.image_pull_secret),
            }},
        },
    }


def _pull_secrets(name: str) -> dict:
    return {"imagePullSecrets": [{"name": name}]} if name else {}


def portal_service(namespace: str) -> dict:
    """In-cluster address of the portal (the hub's limits hook and the GPU agents): jhub-portal.<ns>.svc."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(im.PORTAL, namespace, "portal"),
            "spec": {"type": "ClusterIP", "selector": _selector("portal"),
                     "ports": [{"name": "http", "port": im.PORT, "targetPort": "http", "protocol": "TCP"}]}}


def portal_network_policy(namespace: str, pod_cidr: str = im.POD_CIDR) -> dict:
    """Who reaches the portal's port: the hub pod, the GPU agents, and browsers. Browsers come from outside
    the cluster's pod network (their own address, through the hostPort), so they are every address except
    the pod network; pods other than the hub and the agents (users' notebooks above all) are refused."""
    port = [{"port": im.PORT, "protocol": "TCP"}]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(im.PORTAL, namespace, "portal"),
            "spec": {"podSelector": {"matchLabels": _selector("portal")}, "policyTypes": ["Ingress"],
                     "ingress": [
                         {"from": [{"podSelector": {"matchLabels": dict(sorted(im.HUB_POD_LABELS.items()))}}],
                          "ports": port},
                         {"from": [{"podSelector": {"matchLabels": _selector("gpu-agent")}}], "ports": port},
                         {"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [pod_cidr]}}], "ports": port},
                     ]}}


# -- the GPU agent ----------------------------------------------------------------------------------------

AGENT_INTERVAL_SECONDS = 10
AGENT_TOKEN_VOLUME = "portal-token"


def agent_service_account(namespace: str) -> dict:
    """The agents' identity: no API token is mounted and it has no RBAC at all; the portal checks its projected
    tokens (audience jhub-portal) with a TokenReview and takes from each only its own node's samples."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(im.AGENT, namespace, "gpu-agent"),
            "automountServiceAccountToken": False}


def agent_daemonset(namespace: str, portal_url: str, source_digest: str = "", image: Any = im.PORTAL_IMAGE,
                    image_pull_secret: Any = "") -> dict:
    """One agent per GPU node. It runs as root (uid 0) without privileges or capabilities: the kubelet's
    pod-resources socket is root's; the NVIDIA runtime class injects the GPUs (NVML), and hostPID lets it map
    the PIDs NVML reports to pod cgroups (/proc/<pid>/cgroup) where several pods share a GPU.
    Its credential is a projected ServiceAccount token (audience jhub-portal, AGENT_TOKEN_SECONDS), which the
    kubelet keeps fresh in the file PORTAL_AGENT_TOKEN_FILE names; the agent reads it for every send."""
    # Names: portal/agent/__init__.py (the agent helper's); the agent's defaults hold for the rest.
    env = _env({"AGENT_INTERVAL_SECONDS": str(AGENT_INTERVAL_SECONDS), "NVIDIA_DRIVER_CAPABILITIES": "utility",
                "NVIDIA_VISIBLE_DEVICES": "all", "PORTAL_URL": portal_url,
                "PORTAL_AGENT_TOKEN_FILE": f"{im.AGENT_TOKEN_DIR}/token",
                "KUBELET_POD_RESOURCES_SOCKET": f"{im.KUBELET_POD_RESOURCES_DIR}/kubelet.sock"})
    env.append({"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    env.sort(key=lambda item: item["name"])
    template_meta: dict[str, Any] = {"labels": _labels("gpu-agent")}
    if source_digest:
        template_meta["annotations"] = {"jhub.io/portal-source": source_digest}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": _meta(im.AGENT, namespace, "gpu-agent"),
        "spec": {
            "selector": {"matchLabels": _selector("gpu-agent")},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": template_meta, "spec": {
                "serviceAccountName": im.AGENT,
                "automountServiceAccountToken": False,  # no token for the API server; the projected one below
                "enableServiceLinks": False,
                "hostPID": True,
                "runtimeClassName": im.NVIDIA_RUNTIME_CLASS,
                "nodeSelector": dict(im.GPU_NODE_SELECTOR),
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [{
                    "name": "agent", "image": image, "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-m", "portal.agent"], "env": env,
                    "volumeMounts": [{"name": "pod-resources", "mountPath": im.KUBELET_POD_RESOURCES_DIR,
                                      "readOnly": True},
                                     {"name": AGENT_TOKEN_VOLUME, "mountPath": im.AGENT_TOKEN_DIR, "readOnly": True}],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                        "privileged": False, "readOnlyRootFilesystem": True,
                                        "runAsNonRoot": False, "runAsUser": 0},
                    "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                }],
                "volumes": [{"name": "pod-resources",
                             "hostPath": {"path": im.KUBELET_POD_RESOURCES_DIR, "type": "Directory"}},
                            {"name": AGENT_TOKEN_VOLUME, "projected": {"sources": [{"serviceAccountToken": {
                                "audience": im.AGENT_TOKEN_AUDIENCE, "expirationSeconds": im.AGENT_TOKEN_SECONDS,
                                "path": "token"}}]}}],
                **_pull_secrets(image_pull_secret),
            }},
        },
    }
