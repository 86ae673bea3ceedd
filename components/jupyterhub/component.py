"""`JupyterHub`: the namespace, the hub's Secrets and cluster-reader RBAC, and the chart release.

Values come from the pure builders in this package; this class only registers resources. The release is
`helm.v3.Release` (a real `helm upgrade --install`, so the chart's hooks run) from the local chart archive
in `charts/` (air-gapped) or from the chart repository (online).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from ..bundle import built
from ..bundle.locks import Lock
from ..bundle.charts import chart_source
from ..settings import Settings
from ..settings.base import reveal
from . import manifests
from .auth_values import admins_without_password, secret_env
from .chart import CHART_NAME, CHART_REPO, CHART_VERSION, RELEASE_NAME
from .hub_files import read_branding, read_hub_sources
from .user_images import pinned_hub
from .values import ValuesInput, chart_values

RELEASE_TIMEOUT_S = 1200  # first start pulls images online; offline it is quick
# A random secret, made once on the admin machine when its resource is created and kept in the (encrypted)
# stack state: the same value on every later `pulumi up`. 24 random bytes as 48 hex characters.
RANDOM_SECRET_COMMAND = "od -An -N24 -tx1 /dev/urandom | tr -d ' \\n'"
ADMIN_PASSWORDS_OUTPUT = "hubAdminPasswords"


@dataclass(frozen=True)
class JupyterHubArgs:
    settings: Settings
    provider: k8s.Provider
    lock: Lock
    hub_url: pulumi.Input[str]  # where people open the hub
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # Images the project built, pushed to jhub:offline.buildRegistry: full reference -> pinned registry one
    images: dict[str, pulumi.Output[str]] = field(default_factory=dict)


class JupyterHub(pulumi.ComponentResource):
    url: pulumi.Output[str]
    namespace: pulumi.Output[str]
    release: k8s.helm.v3.Release
    admin_passwords: Optional[pulumi.Output[dict]] = None  # generated initial passwords (secret), native only
    portal_service_token: Optional[pulumi.Output[str]] = None  # the portal's hub service token (secret)
    portal_api_token: Optional[pulumi.Output[str]] = None  # the limits hook's portal API token (secret)
    image_pull_secret: Optional[pulumi.Output[str]] = None  # the build registry's login Secret, when there is one

    def __init__(self, args: JupyterHubArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("jhub:jupyterhub:JupyterHub", "jupyterhub", None, opts)
        self._args = args
        settings = args.settings
        self.hub, self.tls = settings.hub, settings.tls
        self.url = pulumi.Output.from_input(args.hub_url)
        # Read everything first: a missing file fails here, before any child is registered.
        sources = read_hub_sources(settings.project_dir)
        branding = read_branding(settings.project_dir, self.hub.branding)
        auth, portal = settings.auth, settings.portal
        # Native admins without a configured password get a generated one (secret stack output), so a fresh
        # hub always has an admin who can sign in and approve the others.
        generated = {name: self._random_secret(f"admin-password-{name}")
                     for name in admins_without_password(auth, self.hub)}
        # The portal signs users in as a JupyterHub service; its token (the OAuth client secret) is generated
        # here and stays out of the values. The portal's own deployment takes it from `portal_service_token`.
        self.portal_service_token = self._random_secret("portal-service-token") if portal.enabled else None
        # The limits hook's token: `jhub:portal.apiToken` when set, else generated once; the portal deployment
        # puts its SHA-256 into PORTAL_API_TOKENS (role `hub`).
        if portal.enabled:
            self.portal_api_token = (pulumi.Output.secret(reveal(portal.api_token)) if portal.api_token is not None
                                     else self._random_secret("portal-api-token"))
        env_names = tuple(secret_env(auth, portal, {name: "?" for name in generated}, "?", "?"))
        env = pulumi.Output.all(passwords=pulumi.Output.all(**generated) if generated else {},
                                token=self.portal_service_token, api_token=self.portal_api_token).apply(
            lambda made: secret_env(auth, portal, made["passwords"], made["token"], made["api_token"]))
        self.admin_passwords = pulumi.Output.secret(pulumi.Output.all(**generated)) if generated else None
        if auth.mode == "native" and not self.hub.admin_users:
            pulumi.log.warn("jhub:hub.adminUsers is empty: with native accounts nobody can approve sign-ups "
                            "(or use the admin page); name at least one admin", self)

        # The namespace holds the hub's database volume and, with `local` storage, every user's volume: Pulumi
        # never deletes it (not on `pulumi destroy`, not when jhub:hub.namespace changes). A NamespacePatch
        # creates it when missing and adopts it when it is there (after a destroy), and retainOnDelete keeps it.
        ns = self._create("namespace", manifests.namespace(self.hub.namespace), args.depends_on, retain=True)
        self.namespace = ns.metadata.apply(lambda m: m["name"])
        self.namespace_resource = ns  # what features deployed into this namespace wait for
        role = self._create("cluster-reader", manifests.cluster_reader_role(self.hub.namespace), [])
        binding = self._create("cluster-reader-binding", manifests.cluster_reader_binding(self.hub.namespace),
                               [role, ns])
        secret_names = {"hub": pulumi.Output.from_input(""), "tls": pulumi.Output.from_input(""),
                        "pull": pulumi.Output.from_input("")}
        after = [ns, binding]
        offline = settings.offline
        if built.pulls_with_login(settings):
            # The push's login pulls too: the registry's project may be private.
            login = pulumi.Output.secret(reveal(offline.build_registry_password)).apply(
                lambda password: manifests.registry_login(offline.build_registry_host,
                                                          offline.build_registry_username, password))
            pull = self._create("registry-pull-secret", manifests.registry_pull_secret(
                self.hub.namespace, pulumi.Output.secret(login)), [ns])
            secret_names["pull"], after = pull.metadata.apply(lambda m: m["name"]), after + [pull]
            self.image_pull_secret = secret_names["pull"]
        if env_names:
            hub_secret = self._create("hub-secret", manifests.hub_secret(self.hub.namespace, {
                k: pulumi.Output.secret(env.apply(lambda e, k=k: e[k])) for k in env_names}), [ns])
            secret_names["hub"], after = hub_secret.metadata.apply(lambda m: m["name"]), after + [hub_secret]
        if self.tls.enabled:
            tls_secret = self._create("tls-secret", manifests.tls_secret(
                self.hub.namespace, pulumi.Output.secret(reveal(self.tls.certificate)),
                pulumi.Output.secret(reveal(self.tls.key))), [ns])
            secret_names["tls"], after = tls_secret.metadata.apply(lambda m: m["name"]), after + [tls_secret]

        branding_maps = []
        for item in branding:  # logo, favicon: each in a ConfigMap of its own, never in the values
            config_map = self._create(f"branding-{item.path.split('.')[0]}",
                                      manifests.branding_config_map(self.hub.namespace, item), [ns])
            branding_maps.append(config_map.metadata.apply(lambda m: m["name"]))
            after = after + [config_map]

        cp = settings.control_plane.name
        pinned = pulumi.Output.all(**args.images) if args.images else pulumi.Output.from_input({})
        values = pulumi.Output.all(self.url, secret_names["hub"], secret_names["tls"], pinned, secret_names["pull"],
                                   *branding_maps).apply(
            lambda got: chart_values(ValuesInput(
                hub=pinned_hub(self.hub, got[3]), auth=settings.auth, tls=self.tls, portal=settings.portal,
                control_plane=cp, hub_url=got[0], hub_sources=sources, branding_files=branding,
                branding_config_maps=tuple(got[5:]), secret_env_names=env_names, hub_secret_name=got[1],
                tls_secret_name=got[2], image_pull_secret=got[4], mpi=settings.mpi,
                rdma_resource=settings.infiniband.resource_name if settings.infiniband.enabled else "")))
        self.release = k8s.helm.v3.Release(
            "jupyterhub",
            name=RELEASE_NAME,
            namespace=self.hub.namespace,
            values=values,
            create_namespace=False,
            cleanup_on_fail=True,
            max_history=10,
            timeout=RELEASE_TIMEOUT_S,
            **chart_source(settings, args.lock, name=CHART_NAME, version=CHART_VERSION, repo=CHART_REPO),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=after + args.depends_on),
        )
        self.register_outputs({"url": self.url, "namespace": self.namespace})

    def _random_secret(self, name: str) -> pulumi.Output[str]:
        """A secret generated once (see RANDOM_SECRET_COMMAND); never printed, secret in the state."""
        made = command.local.Command(
            name,
            create=RANDOM_SECRET_COMMAND,
            add_previous_output_in_env=False,
            logging=command.local.Logging.NONE,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"]),
        )
        return pulumi.Output.secret(made.stdout.apply(lambda out: (out or "").strip()))

    def _create(self, name: str, manifest: dict, after: list, retain: bool = False) -> pulumi.CustomResource:
        """One manifest as its typed resource, on the cluster provider, under this component."""
        kinds = {
            "Namespace": k8s.core.v1.NamespacePatch,
            "Secret": k8s.core.v1.Secret,
            "ConfigMap": k8s.core.v1.ConfigMap,
            "ClusterRole": k8s.rbac.v1.ClusterRole,
            "ClusterRoleBinding": k8s.rbac.v1.ClusterRoleBinding,
        }
        body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
        if "stringData" in body:
            body["string_data"] = body.pop("stringData")
        if "binaryData" in body:
            body["binary_data"] = body.pop("binaryData")
        if "roleRef" in body:
            body["role_ref"] = body.pop("roleRef")
        opts = pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=after,
                                      retain_on_delete=retain or None)
        return kinds[manifest["kind"]](name, **body, opts=opts)
