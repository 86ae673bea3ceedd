"""Every user's own MPI namespace, set up by the hub when their server starts (`custom.jhub.mpi`).

At each start, after the spawn check accepted the server (so a refused spawn creates nothing), the hub makes,
each create-or-keep (HTTP 409 means it is there already):

* the namespace `<namespacePrefix><safe slug of the user name>`, labelled `<namespaceLabel>: "true"` (the
  portal collector's `user_namespace_label` selector) and annotated with the user's name;
* the ServiceAccount `serviceAccount` there, and a RoleBinding there to the ClusterRole `userClusterRole`
  (MPIJobs, pods, pods/log): a RoleBinding grants a ClusterRole's rules in its own namespace only;
* with the portal (`portalPodStopper`), a RoleBinding there of the portal's pod-stopper ClusterRole to the
  portal's ServiceAccount, so the portal's admin "delete pod" reaches the user's MPI pods;
* the ResourceQuota `quotaName` from the user's portal limits (what the spawn check fetched), else from
  `quotaDefaults`; replaced at each start, so a changed limit applies at the next start;
* with a build-registry login (`pullSecret.source`), a copy of the hub namespace's pull Secret there, named
  `pullSecret.name`, listed in the `imagePullSecrets` of the ServiceAccount and of the namespace's `default`
  one (the MPI Operator's pods run as the template's `serviceAccountName`, most often `default`); the kubelet
  pulls the site's notebook image for them with it. Read, compared, and written only when it differs: a
  second start changes nothing, a changed login (a new source Secret) is copied at the next start;
* a token for that ServiceAccount (TokenRequest API, `tokenSeconds` long, a fresh one at each start) in a
  kubeconfig, kept in a Secret in the hub's namespace and mounted into the notebook pod; `KUBECONFIG` points
  at it, so `kubectl apply -f mpijob.yaml` in a terminal acts in the user's namespace.

Why the hub copies the pull Secret from the API rather than from a file mounted into the hub: the source
Secret's name changes with the login (Pulumi names it), the hub already may read Secrets in its own namespace
(the chart's Role), and the copy keeps the API's `data` as it is, never decoded, so the hub pod holds no file
of the login and its code never sees the password in clear. The program's RBAC for it is guarded by an
admission policy (components/mpi/rbac.py, admission.py).

Why a TokenRequest and a Secret in the hub's namespace: a pod can only mount tokens of ServiceAccounts of its
own namespace, and the notebook runs in the hub's. A token expires; a server running longer than
`tokenSeconds` gets a new one when it restarts (the default matches a week, the idle culler's default).

The manifests are built by pure functions (validated against the Kubernetes schemas in tests); `ensure_user`
only sends them, through kubespawner's own kubernetes_asyncio client.
"""

import base64
import json

from kubespawner.slugs import safe_slug

USERNAME_ANNOTATION = "hub.jupyter.org/username"
VOLUME_NAME = "jhub-mpi-kubeconfig"
MANAGED = {"app.kubernetes.io/managed-by": "jhub", "app.kubernetes.io/part-of": "jhub",
           "app.kubernetes.io/component": "mpi-user"}


def user_namespace(prefix: str, username: str) -> str:
    """A DNS-label namespace name for the user: kubespawner's safe slug (hashed when escaping was needed)."""
    return prefix + safe_slug(username, max_length=63 - len(prefix))


def _meta(name: str, namespace: str | None, username: str) -> dict:
    meta = {"name": name, "labels": dict(MANAGED), "annotations": {USERNAME_ANNOTATION: username}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def namespace_manifest(cfg: dict, username: str) -> dict:
    name = user_namespace(cfg["namespacePrefix"], username)
    meta = _meta(name, None, username)
    meta["labels"][cfg["namespaceLabel"]] = "true"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def service_account_manifest(cfg: dict, namespace: str, username: str) -> dict:
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": _meta(cfg["serviceAccount"], namespace, username), "automountServiceAccountToken": False}
    if pull_secret_name(cfg):
        account["imagePullSecrets"] = [{"name": pull_secret_name(cfg)}]
    return account


PULL_SECRET_TYPE = "kubernetes.io/dockerconfigjson"
PULL_SECRET_KEY = ".dockerconfigjson"


def pull_secret_name(cfg: dict) -> str:
    """The pull Secret's name in users' namespaces; "" without a build-registry login."""
    pull = cfg.get("pullSecret") or {}
    return pull.get("name", "") if pull.get("source") else ""


def pulling_accounts(cfg: dict) -> tuple[str, ...]:
    """The ServiceAccounts whose pods get the pull Secret: the user's, and `default` (MPIJob templates)."""
    return (cfg["serviceAccount"], "default")


def pull_secret_manifest(cfg: dict, namespace: str, username: str, data: dict) -> dict:
    """The copy in the user's namespace: `data` as the API gave it for the source (base64, never decoded)."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(pull_secret_name(cfg), namespace, username),
            "type": PULL_SECRET_TYPE, "data": dict(data)}


def with_pull_secret(names: list[str], secret: str) -> list[str] | None:
    """A ServiceAccount's imagePullSecrets names with `secret` added (kept in order); None when it is there."""
    return None if secret in names else [*names, secret]


class MpiSetupError(Exception):
    """Something the hub found wrong in the cluster; the message names it and holds nothing secret."""


def role_binding_manifest(cfg: dict, namespace: str, username: str) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": _meta(cfg["serviceAccount"], namespace, username),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cfg["userClusterRole"]},
        "subjects": [{"kind": "ServiceAccount", "name": cfg["serviceAccount"], "namespace": namespace}],
    }


def pod_stopper_binding_manifest(cfg: dict, namespace: str, username: str) -> dict | None:
    """The portal's pod-stopper RoleBinding in the user's namespace (named after the ClusterRole); None
    without the portal."""
    stopper = cfg["portalPodStopper"]
    if not stopper["clusterRole"]:
        return None
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": _meta(stopper["clusterRole"], namespace, username),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": stopper["clusterRole"]},
        "subjects": [{"kind": "ServiceAccount", "name": stopper["serviceAccount"], "namespace": stopper["namespace"]}],
    }


def _amount(value) -> str:
    text = f"{value:f}" if not isinstance(value, int) else str(value)
    return text.rstrip("0").rstrip(".") if "." in text else text


def quota_hard(limits: dict | None, defaults: dict, gpu_resource: str) -> dict:
    """ResourceQuota `hard` from the portal's limits where it sets one, else the config defaults (null: none).

    `limits` is the portal answer's `limits` object ({"cpu", "memoryGiB", "gpus"}, null = unlimited)."""
    limits = limits or {}
    hard = {}
    pick = lambda key: limits.get(key) if limits.get(key) is not None else defaults.get(key)  # noqa: E731
    cpu, memory, gpus, pods = pick("cpu"), pick("memoryGiB"), pick("gpus"), defaults.get("pods")
    if cpu is not None:
        hard["requests.cpu"] = hard["limits.cpu"] = _amount(cpu)
    if memory is not None:
        hard["requests.memory"] = hard["limits.memory"] = f"{int(round(float(memory) * 1024))}Mi"
    if gpus is not None:
        hard[f"requests.{gpu_resource}"] = str(int(gpus))
    if pods is not None:
        hard["pods"] = str(int(pods))
    return dict(sorted(hard.items()))


def resource_quota_manifest(cfg: dict, namespace: str, username: str, hard: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta(cfg["quotaName"], namespace, username),
            "spec": {"hard": dict(hard)}}


def token_request_manifest(cfg: dict) -> dict:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [], "expirationSeconds": cfg["tokenSeconds"]}}


def kubeconfig(cfg: dict, namespace: str, token: str, ca_pem: bytes) -> str:
    """A kubeconfig for the user's ServiceAccount, its namespace the default (JSON is YAML; sorted keys)."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "jhub",
        "clusters": [{"name": "jhub", "cluster": {
            "server": cfg["apiServer"], "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": cfg["serviceAccount"], "user": {"token": token}}],
        "contexts": [{"name": "jhub", "context": {"cluster": "jhub", "user": cfg["serviceAccount"],
                                                  "namespace": namespace}}],
    }
    return json.dumps(config, indent=1, sort_keys=True) + "\n"


def kubeconfig_secret_name(cfg: dict, username: str) -> str:
    return "jhub-mpi-" + safe_slug(username, max_length=63 - len("jhub-mpi-"))


def kubeconfig_secret_manifest(cfg: dict, hub_namespace: str, username: str, config_text: str) -> dict:
    meta = _meta(kubeconfig_secret_name(cfg, username), hub_namespace, username)
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
            "stringData": {"config": config_text}}


def pod_additions(cfg: dict, secret_name: str) -> tuple[dict, dict, dict]:
    """(volume, volume mount, env var) that give the notebook its kubeconfig."""
    volume = {"name": VOLUME_NAME, "secret": {"secretName": secret_name, "defaultMode": 0o444}}
    mount = {"name": VOLUME_NAME, "mountPath": cfg["mountPath"], "readOnly": True}
    env = {"name": "KUBECONFIG", "value": f"{cfg['mountPath'].rstrip('/')}/config"}
    return volume, mount, env


# -- sending them -------------------------------------------------------------------------------------------


async def _create(call, *args, exists_ok=True):
    from kubernetes_asyncio.client.rest import ApiException

    try:
        return await call(*args)
    except ApiException as exc:
        if exc.status == 409 and exists_ok:
            return None
        raise


async def _read(call, *args):
    """The object, or None on 404."""
    from kubernetes_asyncio.client.rest import ApiException

    try:
        return await call(*args)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def ensure_pull_secret(core, cfg: dict, hub_ns: str, ns: str, username: str) -> str:
    """Copy the hub namespace's pull Secret into `ns` when it differs; returns what was done (for the log)."""
    source_name, name = cfg["pullSecret"]["source"], pull_secret_name(cfg)
    source = await _read(core.read_namespaced_secret, source_name, hub_ns)
    if source is None or source.type != PULL_SECRET_TYPE or not (source.data or {}).get(PULL_SECRET_KEY):
        problem = "is missing" if source is None else f"is not a {PULL_SECRET_TYPE} Secret with {PULL_SECRET_KEY}"
        raise MpiSetupError(f"the registry pull Secret {hub_ns}/{source_name} {problem}")
    body = pull_secret_manifest(cfg, ns, username, {PULL_SECRET_KEY: source.data[PULL_SECRET_KEY]})
    current = await _read(core.read_namespaced_secret, name, ns)
    if current is None:
        await _create(core.create_namespaced_secret, ns, body)  # 409: a start beside this one made it
        return "created"
    if current.type == PULL_SECRET_TYPE and (current.data or {}) == body["data"]:
        return "unchanged"
    if current.metadata.resource_version:  # no lost update
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
    await core.replace_namespaced_secret(name, ns, body)
    return "updated"


async def ensure_pulling_account(core, cfg: dict, ns: str, account: str) -> bool:
    """List the pull Secret in the ServiceAccount's imagePullSecrets (creating `default` if the controller has
    not yet); True when it was changed."""
    from kubernetes_asyncio.client.rest import ApiException

    secret = pull_secret_name(cfg)
    current = await _read(core.read_namespaced_service_account, account, ns)
    if current is None:  # a namespace made a moment ago: the ServiceAccount controller may not have run yet
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account},
                "imagePullSecrets": [{"name": secret}]}
        try:
            await core.create_namespaced_service_account(ns, body)
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise
        current = await core.read_namespaced_service_account(account, ns)
    names = with_pull_secret([ref.name for ref in current.image_pull_secrets or []], secret)
    if names is None:
        return False
    # imagePullSecrets is an atomic list: the patch carries all of it, and the resourceVersion guards it
    patch = {"imagePullSecrets": [{"name": n} for n in names]}
    if current.metadata.resource_version:
        patch["metadata"] = {"resourceVersion": current.metadata.resource_version}
    await core.patch_namespaced_service_account(account, ns, patch)
    return True


async def ensure_user(spawner, cfg: dict, gpu_resource: str, limits: dict | None) -> str:
    """Create what the user's namespace needs (idempotent); returns the kubeconfig Secret's name."""
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.rest import ApiException

    core = spawner.api
    rbac = client.RbacAuthorizationV1Api(core.api_client)
    username, hub_ns = spawner.user.name, spawner.namespace
    with open(cfg["caFile"], "rb") as handle:  # first: without it no kubeconfig can work, so nothing is made
        ca_pem = handle.read()
    ns_body = namespace_manifest(cfg, username)
    ns = ns_body["metadata"]["name"]
    await _create(core.create_namespace, ns_body)
    await _create(core.create_namespaced_service_account, ns, service_account_manifest(cfg, ns, username))
    await _create(rbac.create_namespaced_role_binding, ns, role_binding_manifest(cfg, ns, username))
    stopper = pod_stopper_binding_manifest(cfg, ns, username)
    if stopper is not None:
        await _create(rbac.create_namespaced_role_binding, ns, stopper)
    if pull_secret_name(cfg):
        done = await ensure_pull_secret(core, cfg, hub_ns, ns, username)
        patched = [a for a in pulling_accounts(cfg) if await ensure_pulling_account(core, cfg, ns, a)]
        spawner.log.info("jhub: registry pull Secret %s in %s %s; ServiceAccounts updated: %s",
                         pull_secret_name(cfg), ns, done, ", ".join(patched) or "none")
    quota = resource_quota_manifest(cfg, ns, username, quota_hard(limits, cfg["quotaDefaults"], gpu_resource))
    try:
        await core.create_namespaced_resource_quota(ns, quota)
    except ApiException as exc:
        if exc.status != 409:
            raise
        await core.replace_namespaced_resource_quota(cfg["quotaName"], ns, quota)
    answer = await core.create_namespaced_service_account_token(cfg["serviceAccount"], ns,
                                                               token_request_manifest(cfg))
    secret = kubeconfig_secret_manifest(cfg, hub_ns, username, kubeconfig(cfg, ns, answer.status.token, ca_pem))
    name = secret["metadata"]["name"]
    try:
        await core.create_namespaced_secret(hub_ns, secret)
    except ApiException as exc:
        if exc.status != 409:
            raise
        # The hub's chart Role may create and delete Secrets (not update): a fresh token replaces the old one.
        await core.delete_namespaced_secret(name, hub_ns)
        await core.create_namespaced_secret(hub_ns, secret)
    spawner.log.info("jhub: MPI namespace %s ready for %s (kubeconfig in Secret %s)", ns, username, name)
    return name


def _add_to_pod(pod, cfg: dict, secret_name: str):
    """Mount the kubeconfig into the notebook container of a kubespawner V1Pod (once)."""
    from kubernetes_asyncio.client import V1EnvVar, V1SecretVolumeSource, V1Volume, V1VolumeMount

    volume, mount, env = pod_additions(cfg, secret_name)
    spec = pod.spec
    spec.volumes = [v for v in (spec.volumes or []) if v.name != VOLUME_NAME] + [V1Volume(
        name=volume["name"], secret=V1SecretVolumeSource(secret_name=secret_name,
                                                         default_mode=volume["secret"]["defaultMode"]))]
    container = spec.containers[0]
    container.volume_mounts = [m for m in (container.volume_mounts or []) if m.name != VOLUME_NAME] + [
        V1VolumeMount(name=mount["name"], mount_path=mount["mountPath"], read_only=True)]
    container.env = [e for e in (container.env or []) if e.name != env["name"]] + [
        V1EnvVar(name=env["name"], value=env["value"])]
    return pod


def make_modify_pod_hook(cfg: dict, previous):
    """Wrap the spawn check's modify_pod_hook: once it accepted the pod, set the user up and mount the kubeconfig.

    The spawn check leaves the portal's answer it fetched on the spawner (`jhub_limits`), so the quota reuses
    it instead of asking the portal again."""
    mpi, gpu_resource = cfg["mpi"], cfg["profiles"]["gpuResource"]

    async def modify_pod_hook(spawner, pod):
        from jupyterhub.utils import maybe_future
        from kubernetes_asyncio.client.rest import ApiException
        from tornado import web

        pod = await maybe_future(previous(spawner, pod))
        answer = getattr(spawner, "jhub_limits", None) or {}
        try:
            secret_name = await ensure_user(spawner, mpi, gpu_resource, answer.get("limits"))
        except (ApiException, OSError, MpiSetupError) as exc:
            # Never the response body, the token or the login: the status and reason say enough to an admin.
            why = (f"HTTP {exc.status} {exc.reason}" if isinstance(exc, ApiException) else str(exc)
                   if isinstance(exc, MpiSetupError) else f"{type(exc).__name__}: {exc}")
            namespace = user_namespace(mpi["namespacePrefix"], spawner.user.name)
            spawner.log.error("jhub: cannot set up MPI namespace %s for %s: %s", namespace, spawner.user.name, why)
            message = (f"Your MPI namespace {namespace} could not be set up ({why}), so the server was not started. "
                       "Try again, or ask an admin to check the hub's log.")
            error = web.HTTPError(500, "%s", message)
            error.jupyterhub_message = message
            raise error from None
        return _add_to_pod(pod, mpi, secret_name)

    return modify_pod_hook
