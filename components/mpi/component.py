"""`MpiOperator`: the upstream manifest through pulumi-kubernetes, and the RBAC of per-user MPI namespaces.

The manifest is applied as a `yaml.v2.ConfigFile` (the bundled file air-gapped, its URL online); it holds the
operator's namespace, the MPIJob CRD and the operator. Turning `jhub:mpi.enabled` off deletes them (Pulumi
deletes a ConfigFile's objects in reverse dependency order: the Deployment before the CRD and the namespace);
the users' namespaces are the hub's, made at spawn time, and stay.

With a build-registry login the hub also copies the pull Secret into users' namespaces; the policy that
guards that right (admission.pull_secret_policy) is registered before the role that grants it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from ..bundle import built
from ..bundle.locks import Lock
from ..settings import Settings
from . import admission, rbac
from .manifest import MANIFEST_NAME, MANIFEST_URL, MANIFEST_VERSION


@dataclass(frozen=True)
class MpiOperatorArgs:
    settings: Settings
    provider: k8s.Provider
    lock: Lock
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def manifest_source(settings: Settings, lock: Lock) -> str:
    """The bundled file named in charts.lock (air-gapped) or the upstream URL (online)."""
    if settings.offline.air_gapped:
        entry = next((m for m in lock.manifests if m.name == MANIFEST_NAME and m.version == MANIFEST_VERSION), None)
        if entry is None:
            raise pulumi.RunError(f"charts/charts.lock has no manifests entry for {MANIFEST_NAME} {MANIFEST_VERSION}")
        return f"{settings.offline.charts_dir}/{entry.path}"
    return MANIFEST_URL


class MpiOperator(pulumi.ComponentResource):
    operator: k8s.yaml.v2.ConfigFile

    def __init__(self, args: MpiOperatorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("jhub:mpi:MpiOperator", "mpi-operator", None, opts)
        settings = args.settings
        source = manifest_source(settings, args.lock)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on)
        self.operator = k8s.yaml.v2.ConfigFile("mpi-operator", file=source, opts=child)
        hub_ns = settings.hub.namespace
        pull_secret = built.pulls_with_login(settings)  # the hub copies the pull Secret into users' namespaces
        guards = []
        if pull_secret:  # the guard first: the hub never holds the Secret-create right unguarded (rbac.py)
            guard = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                "mpi-hub-pull-secret-policy", **_body(admission.pull_secret_policy(hub_ns)), opts=child)
            guards.append(k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                "mpi-hub-pull-secret-binding", **_body(admission.pull_secret_binding(hub_ns)),
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[guard])))
        user_role = k8s.rbac.v1.ClusterRole("mpi-user-role", **_body(rbac.user_role(hub_ns)), opts=child)
        hub_role = k8s.rbac.v1.ClusterRole(
            "mpi-hub-role", **_body(rbac.hub_role(hub_ns, settings.portal.enabled, pull_secret)),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on + guards))
        k8s.rbac.v1.ClusterRoleBinding(
            "mpi-hub-binding", **_body(rbac.hub_binding(hub_ns)),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[user_role, hub_role]))
        # MPIJob pods are billable to their namespace's owner (admission.py)
        vap = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            "mpi-pod-owner-policy", **_body(admission.policy(hub_ns)), opts=child)
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            "mpi-pod-owner-binding", **_body(admission.binding(hub_ns)),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[vap]))
        self.register_outputs({})


def _body(manifest: dict) -> dict:
    body = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    if "roleRef" in body:
        body["role_ref"] = body.pop("roleRef")
    return body
