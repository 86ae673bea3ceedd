"""The usage and billing portal on the cluster: PostgreSQL, the portal, its RBAC and NetworkPolicy, the GPU
agent DaemonSet. Pure builders (settings -> manifests and environment) and a component that registers them.

| module | room |
|---|---|
| `images.py` | images, object names, ports, labels, host paths |
| `env.py` | the portal's PORTAL_* environment (plain and secret), PORTAL_API_TOKENS digests |
| `manifests.py` | pure manifests: database, Deployment, Service, RBAC, NetworkPolicies, GPU agent |
| `offline.py` | what the bundle must hold; the source digest of portal/ |
| `image.py` | online mode: build the image on the admin machine, import it on every node |
| `component.py` | `Portal`: registers it all |
"""

from __future__ import annotations

from ..feature import DeployContext, Feature
from . import offline


def deploy(ctx: DeployContext):
    from ..jupyterhub.urls import portal_public_url
    from .component import Portal, PortalArgs

    hub = ctx.parts["jupyterhub"]
    settings = ctx.settings
    return Portal(PortalArgs(
        settings=settings, provider=ctx.provider, cluster=ctx.parts["cluster"], images_dir=ctx.images_dir,
        lock=ctx.lock,
        # The same URLs the hub's values register: its public URL and the portal's OAuth redirect.
        hub_url=hub.url, public_url=hub.url.apply(lambda url: portal_public_url(settings.portal, url)),
        oauth_client_secret=hub.portal_service_token, hub_api_token=hub.portal_api_token,
        image_pull_secret=hub.image_pull_secret,
        depends_on=ctx.cluster_ready + [hub.namespace_resource]))


def outputs(portal, ctx: DeployContext):
    yield "portalUrl", portal.public_url
    yield "portalAdminToken", portal.admin_token


FEATURE = Feature(
    name="portal",
    enabled=lambda settings: settings.portal.enabled and settings.portal.url is None,
    bundle_tags=offline.bundle_tags,
    images=offline.images,
    deploy=deploy,
    outputs=outputs,
)
