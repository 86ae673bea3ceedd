"""The address people open: HTTPS on the configured hostname, else `jhub:hub.publicUrl`, else the NodePort
on the control plane's address."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..settings import Settings
from ..settings.portal import PortalSettings


def hub_url(settings: Settings, control_plane_address: str) -> str:
    hub, tls = settings.hub, settings.tls
    if tls.enabled:
        return f"https://{tls.hostname}"
    if hub.public_url:
        return hub.public_url
    host = f"[{control_plane_address}]" if ":" in control_plane_address else control_plane_address
    return f"http://{host}:{hub.node_port}"


def portal_public_url(portal: PortalSettings, hub_address: str) -> str:
    """Where browsers open the portal: `jhub:portal.publicUrl`, else plain HTTP on its NodePort on the host
    people reach the hub at. The portal's OAuth callback is this URL + `/oauth_callback`."""
    if portal.public_url:
        return portal.public_url
    host = urlsplit(hub_address).hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{portal.node_port}"
