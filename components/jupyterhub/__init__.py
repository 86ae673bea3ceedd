"""JupyterHub on the cluster: pure builders (settings -> chart values and manifests) and the component.

| module | room |
|---|---|
| `chart.py` | chart version, release name, images, paths inside the hub pod |
| `values.py` (+ `auth_values`, `custom_values`, `scheduling_values`, `storage_values`, `hub_files`) | pure values |
| `manifests.py` | pure manifests: namespace, Secrets, branding ConfigMaps, RBAC |
| `offline.py` | what the bundle must hold for the hub |
| `component.py` | `JupyterHub`: registers the manifests and the Helm release |
| `user_images.py` | `UserImages`: the spawn form's project-built images (images/notebook/), online or with a mirror |
"""

from __future__ import annotations

from ..feature import DeployContext, Feature
from . import offline
from .urls import hub_url


def deploy(ctx: DeployContext):
    from ..cluster import detected_address
    from ..bundle import built
    from .component import JupyterHub, JupyterHubArgs
    from .user_images import UserImages, built_choices

    settings = ctx.settings
    images = {}
    if built.must_import(settings) and built_choices(settings, ctx.lock):
        # Not waited for by the release: a user's server starts only once its image is on the node. With
        # jhub:offline.buildRegistry the values name the pushed images by digest, so the release follows the push.
        images = UserImages(settings, ctx.lock, ctx.parts["cluster"].hosts, ctx.images_dir,
                            depends_on=ctx.cluster_ready).refs
    return JupyterHub(JupyterHubArgs(
        images=images,
        # A lone local node has no configured address: the values (OAuth redirects, the portal's sign-in)
        # carry the address the node found for itself, the one people open.
        settings=settings, provider=ctx.provider, lock=ctx.lock,
        hub_url=detected_address(ctx).apply(lambda address: hub_url(settings, address)),
        depends_on=ctx.cluster_ready))


def outputs(hub, ctx: DeployContext):
    from .component import ADMIN_PASSWORDS_OUTPUT

    yield "hubUrl", hub.url
    if hub.admin_passwords is not None:
        yield ADMIN_PASSWORDS_OUTPUT, hub.admin_passwords


FEATURE = Feature(
    name="jupyterhub",
    enabled=lambda settings: True,
    bundle_tags=offline.bundle_tags,
    images=offline.images,
    deploy=deploy,
    outputs=outputs,
)
