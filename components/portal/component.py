"""`Portal`: PostgreSQL (or an external database), the portal Deployment with its RBAC and NetworkPolicy, and
the GPU agent DaemonSet. Manifests come from the pure builders in this package; this class only registers.

Secrets (database password, session secret, admin API token) are generated once, like the hub's
(`RANDOM_SECRET_COMMAND`), and kept in the encrypted state: every later `pulumi up` keeps them. The GPU
agents have no shared secret: each uses its pod's projected ServiceAccount token, bound to its node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from ..bundle import built
from ..bundle.locks import Lock
from ..cluster import ClusterPart
from ..jupyterhub.component import RANDOM_SECRET_COMMAND
from ..settings import Settings
from ..settings.base import reveal
from . import env as portal_env
from . import image, manifests
from . import images as im
from .offline import source_digest


@dataclass(frozen=True)
class PortalArgs:
    settings: Settings
    provider: k8s.Provider
    cluster: ClusterPart
    images_dir: Path
    lock: Lock
    hub_url: pulumi.Output[str]  # where browsers reach the hub (its authorize page)
    public_url: pulumi.Output[str]  # where browsers reach the portal; the hub registers <it>/oauth_callback
    oauth_client_secret: pulumi.Output[str]  # the hub's portal_service_token
    hub_api_token: pulumi.Output[str]  # the hub's limits-hook token (role hub)
    image_pull_secret: Optional[pulumi.Output[str]] = None  # the build registry's login Secret (the hub's)
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def gpu_agent_enabled(settings: Settings) -> bool:
    flag = settings.portal.gpu_agent
    return bool(settings.gpu.operator) if flag is None else flag


class Portal(pulumi.ComponentResource):
    admin_token: pulumi.Output[str]
    public_url: pulumi.Output[str]
    deployment: k8s.apps.v1.Deployment

    def __init__(self, args: PortalArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("jhub:portal:Portal", "portal", None, opts)
        self._args = args
        settings = args.settings
        ns = settings.hub.namespace  # the hub's namespace, kept by the hub component across destroys
        digest = source_digest()
        self.admin_token = self._random_secret("portal-admin-token")
        session_secret = self._random_secret("portal-session-secret")
        tokens = {portal_env.ADMIN: self.admin_token, portal_env.HUB: args.hub_api_token}
        agents = gpu_agent_enabled(settings)

        image_steps, portal_image = self._create_image(digest)
        after = list(args.depends_on) + image_steps
        db_url, db_after = self._create_database(ns, after)
        secret_values = pulumi.Output.all(db_url=db_url, client=args.oauth_client_secret, session=session_secret,
                                          tokens=pulumi.Output.all(**tokens)).apply(
            lambda got: portal_env.secret_env(database_url=got["db_url"], oauth_client_secret=got["client"],
                                              session_secret=got["session"], tokens=got["tokens"]))
        secret = self._create("portal-secret", manifests.portal_secret(ns, {
            key: pulumi.Output.secret(secret_values.apply(lambda values, key=key: values[key]))
            for key in portal_env.SECRET_KEYS}), after)
        rbac = self._create_rbac(ns, after, agents)
        self.public_url = args.public_url
        pull_secret = args.image_pull_secret if args.image_pull_secret is not None else ""
        pod = pulumi.Output.all(secret.metadata, args.hub_url, args.public_url, portal_image, pull_secret).apply(
            lambda got: manifests.portal_deployment(manifests.PortalPod(image=got[3], image_pull_secret=got[4],
                namespace=ns, control_plane=settings.control_plane.name, host_port=settings.portal.node_port,
                env=portal_env.plain_env(settings, hub_url=got[1], public_url=got[2]),
                secret_name=got[0]["name"], secret_keys=portal_env.SECRET_KEYS,
                secret_aliases=portal_env.secret_aliases(settings),
                storage_host_path=portal_env.storage_host_path(settings),
                storage_owner=(settings.hub.user_uid, settings.hub.user_gid), source_digest=digest)))
        self.deployment = k8s.apps.v1.Deployment(
            "portal-deployment", metadata=pod["metadata"], spec=pod["spec"],
            opts=self._opts(after + db_after + rbac + [secret]))
        service = self._create("portal-service", manifests.portal_service(ns), after)
        self._create("portal-network-policy", manifests.portal_network_policy(ns), after)
        if agents:
            agent_account = self._create("gpu-agent-service-account", manifests.agent_service_account(ns), after)
            self._create("gpu-agent", manifests.agent_daemonset(ns, settings.portal.url_in(ns), digest,
                                                                image=portal_image, image_pull_secret=pull_secret),
                         after + [agent_account, service])
        self.register_outputs({"publicUrl": self.public_url})

    # -- steps ------------------------------------------------------------------------------------

    def _create_image(self, digest: str) -> tuple[list[pulumi.Resource], pulumi.Input[str]]:
        """Online: build the image here and import it on every node. Air-gapped, the cluster's image step
        imports the bundle's tarball, except with a registry mirror (nodes then import no tarball): this
        imports the bundled one, at the sha256 the lock records (components/bundle/built.py). With
        jhub:offline.buildRegistry: pushed there, and the pods run it by digest. Returns the steps and the
        image."""
        args = self._args
        if not built.must_import(args.settings):
            return [], im.PORTAL_IMAGE
        return image.provide(self, args.settings, args.lock, args.cluster.hosts, args.images_dir, digest,
                             after=list(args.depends_on))

    def _create_database(self, ns: str, after: list) -> tuple[pulumi.Output[str], list]:
        portal = self._args.settings.portal
        if portal.database_url is not None:
            return pulumi.Output.secret(reveal(portal.database_url)), []
        password = self._random_secret("portal-db-password")
        secret = self._create("portal-db-secret", manifests.db_secret(ns, password), after)
        service = self._create("portal-db-service", manifests.db_service(ns), after)
        policy = self._create("portal-db-network-policy", manifests.db_network_policy(ns), after)
        # The volume claim comes from the StatefulSet's template and outlives it (`Retain`); the StatefulSet
        # itself is not waited for: the portal's migrate init container retries until PostgreSQL answers.
        db = self._create("portal-db", manifests.db_statefulset(ns, portal.database.size,
                                                                portal.database.storage_class),
                          after + [secret, service], skip_await=True)
        return pulumi.Output.secret(password.apply(lambda p: manifests.database_url(ns, p))), [db, policy]

    def _create_rbac(self, ns: str, after: list, agents: bool) -> list[pulumi.Resource]:
        user_namespaces = portal_env.user_namespaces(self._args.settings)
        account = self._create("portal-service-account", manifests.service_account(ns), after)
        role = self._create("portal-role", manifests.role(ns), after)
        binding = self._create("portal-role-binding", manifests.role_binding(
            ns, im.PORTAL, "Role", im.PORTAL, ns), after + [role, account])
        reader = self._create("portal-cluster-reader", manifests.cluster_reader_role(ns, user_namespaces), after)
        reader_binding = self._create("portal-cluster-reader-binding", manifests.cluster_reader_binding(ns),
                                      after + [reader, account])
        made = [account, binding, reader_binding]
        if agents:  # the agents' tokens are checked with TokenReviews
            reviewer = self._create("portal-token-reviewer", manifests.token_reviewer_role(ns), after)
            made.append(self._create("portal-token-reviewer-binding", manifests.cluster_binding(ns, "token-reviewer"),
                                     after + [reviewer, account]))
        if user_namespaces:
            made.append(self._create("portal-pod-stopper", manifests.pod_stopper_role(ns), after))
        return made

    # -- helpers ----------------------------------------------------------------------------------

    def _opts(self, after: list, **kw) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=after, **kw)

    def _random_secret(self, name: str) -> pulumi.Output[str]:
        made = command.local.Command(
            name, create=RANDOM_SECRET_COMMAND, add_previous_output_in_env=False,
            logging=command.local.Logging.NONE,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"]))
        return pulumi.Output.secret(made.stdout.apply(lambda out: (out or "").strip()))

    def _create(self, name: str, manifest: dict, after: list, skip_await: bool = False) -> pulumi.CustomResource:
        kinds = {
            "Secret": k8s.core.v1.Secret, "Service": k8s.core.v1.Service,
            "ServiceAccount": k8s.core.v1.ServiceAccount, "StatefulSet": k8s.apps.v1.StatefulSet,
            "DaemonSet": k8s.apps.v1.DaemonSet, "NetworkPolicy": k8s.networking.v1.NetworkPolicy,
            "Role": k8s.rbac.v1.Role, "RoleBinding": k8s.rbac.v1.RoleBinding,
            "ClusterRole": k8s.rbac.v1.ClusterRole, "ClusterRoleBinding": k8s.rbac.v1.ClusterRoleBinding,
        }
        body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
        renames = {"stringData": "string_data", "roleRef": "role_ref",
                   "automountServiceAccountToken": "automount_service_account_token"}
        for old, new in renames.items():
            if old in body:
                body[new] = body.pop(old)
        if skip_await:
            meta = dict(body["metadata"])
            meta["annotations"] = {**meta.get("annotations", {}), "pulumi.com/skipAwait": "true"}
            body["metadata"] = meta
        return kinds[manifest["kind"]](name, **body, opts=self._opts(after))
