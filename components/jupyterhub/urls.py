"""The address people open: HTTPS on the configured hostname, else `jhub:hub.publicUrl`, else the NodePort
on the control plane's address."""

from __future__ import annotations

from ..settings import Settings


def hub_url(settings: Settings, control_plane_address: str) -> str:
    hub, tls = settings.section("hub"), settings.section("tls")
    if tls.enabled:
        return f"https://{tls.hostname}"
    if hub.public_url:
        return hub.public_url
    host = f"[{control_plane_address}]" if ":" in control_plane_address else control_plane_address
    return f"http://{host}:{hub.node_port}"
