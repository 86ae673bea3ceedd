"""`JupyterHub`: the namespace, the hub's Secrets and cluster-reader RBAC, and the chart release.

Values come from the pure builders in this package; this class only registers resources. The release is
`helm.v3.Release` (a real `helm upgrade --install`, so the chart's hooks run) from the local chart archive
in `charts/` (air-gapped) or from the chart repository (online).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from ..bundle.locks import Lock
from ..settings import Settings
from ..settings.base import reveal
from . import manifests
from .auth_values import secret_env
from .chart import CHART_NAME, CHART_REPO, CHART_VERSION, RELEASE_NAME
from .hub_files import read_branding, read_hub_sources
from .values import ValuesInput, chart_values

RELEASE_TIMEOUT_S = 1200  # first start pulls images online; offline it is quick


@dataclass(frozen=True)
class JupyterHubArgs:
    settings: Settings
    provider: k8s.Provider
    lock: Lock
    hub_url: str
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def chart_source(settings: Settings, lock: Lock) -> dict:
    """Release chart arguments: the archive named in charts.lock (air-gapped) or the repository (online)."""
    if settings.offline.air_gapped:
        entry = next((c for c in lock.charts if c.name == CHART_NAME and c.version == CHART_VERSION), None)
        if entry is None:
            raise pulumi.RunError(f"charts/charts.lock has no entry for {CHART_NAME} {CHART_VERSION}")
        return {"chart": f"{settings.offline.charts_dir}/{entry.path}"}
    return {"chart": CHART_NAME, "version": CHART_VERSION,
            "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPO)}


class JupyterHub(pulumi.ComponentResource):
    url: str
    namespace: pulumi.Output[str]
    release: k8s.helm.v3.Release

    def __init__(self, args: JupyterHubArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("jhub:jupyterhub:JupyterHub", "jupyterhub", None, opts)
        self._args = args
        settings = args.settings
        self.hub, self.tls = settings.section("hub"), settings.section("tls")
        self.url = args.hub_url
        # Read everything first: a missing file fails here, before any child is registered.
        sources = read_hub_sources(settings.project_dir)
        branding = read_branding(settings.project_dir, self.hub.branding)
        env = secret_env(settings.section("auth"), settings.section("portal"))

        # The namespace holds the hub's database volume and, with `local` storage, every user's volume: Pulumi
        # never deletes it (not on `pulumi destroy`, not when jhub:hub.namespace changes). A NamespacePatch
        # creates it when missing and adopts it when it is there (after a destroy), and retainOnDelete keeps it.
        ns = self._create("namespace", manifests.namespace(self.hub.namespace), args.depends_on, retain=True)
        self.namespace = ns.metadata.apply(lambda m: m["name"])
        role = self._create("cluster-reader", manifests.cluster_reader_role(self.hub.namespace), [])
        binding = self._create("cluster-reader-binding", manifests.cluster_reader_binding(self.hub.namespace),
                               [role, ns])
        secret_names = {"hub": pulumi.Output.from_input(""), "tls": pulumi.Output.from_input("")}
        after = [ns, binding]
        if env:
            hub_secret = self._create("hub-secret", manifests.hub_secret(
                self.hub.namespace, {k: pulumi.Output.secret(v) for k, v in env.items()}), [ns])
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
        values = pulumi.Output.all(secret_names["hub"], secret_names["tls"], *branding_maps).apply(
            lambda names: chart_values(ValuesInput(
                hub=self.hub, auth=settings.section("auth"), tls=self.tls, portal=settings.section("portal"),
                control_plane=cp, hub_url=self.url, hub_sources=sources, branding_files=branding,
                branding_config_maps=tuple(names[2:]), secret_env_names=tuple(env), hub_secret_name=names[0],
                tls_secret_name=names[1])))
        self.release = k8s.helm.v3.Release(
            "jupyterhub",
            name=RELEASE_NAME,
            namespace=self.hub.namespace,
            values=values,
            create_namespace=False,
            cleanup_on_fail=True,
            max_history=10,
            timeout=RELEASE_TIMEOUT_S,
            **chart_source(settings, args.lock),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=after + args.depends_on),
        )
        self.register_outputs({"url": self.url, "namespace": self.namespace})

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
