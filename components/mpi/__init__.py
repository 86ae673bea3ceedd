"""The Kubeflow MPI Operator (`jhub:mpi`) and the RBAC that lets the hub give every user an MPI namespace.

| module | room |
|---|---|
| `manifest.py` | manifest version, URL, image |
| `rbac.py` | pure ClusterRoles: the users' role, the hub's (only what creating a user's namespace needs) |
| `offline.py` | what the bundle must hold |
| `component.py` | `MpiOperator`: registers the manifest and the RBAC |

The per-user objects (namespace, ServiceAccount, RoleBinding, ResourceQuota, kubeconfig Secret) are made by
the hub at spawn time: hub/jhub_mpi.py.
"""

from __future__ import annotations

from ..feature import DeployContext, Feature
from . import offline


def deploy(ctx: DeployContext):
    from .component import MpiOperator, MpiOperatorArgs

    return MpiOperator(MpiOperatorArgs(settings=ctx.settings, provider=ctx.provider, lock=ctx.lock,
                                       depends_on=list(ctx.cluster_ready)))


FEATURE = Feature(
    name="mpi",
    enabled=lambda settings: settings.mpi.enabled,
    bundle_tags=offline.bundle_tags,
    images=offline.images,
    deploy=deploy,
)
