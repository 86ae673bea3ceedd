"""Branding: our templates (which extend JupyterHub's own), title, logo, favicon, announcements, button text.

Files come from paths in `branding` (the chart mounts them through hub.extraFiles). The logo is served by
JupyterHub itself at /hub/logo (`JupyterHub.logo_file`); the favicon is inlined as a data: URI, so it needs
no handler and no write access to the hub image's static directory.
"""

import base64
import mimetypes
import os

from jhub_config import ConfigError

TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
_ICON_TYPES = {".ico": "image/x-icon", ".svg": "image/svg+xml", ".png": "image/png"}


def _read(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"custom.jhub.branding.{key}: cannot read {path}: {exc.strerror}") from None


def favicon_data_uri(path: str) -> str:
    kind = _ICON_TYPES.get(os.path.splitext(path)[1].lower()) or mimetypes.guess_type(path)[0] or "image/x-icon"
    return f"data:{kind};base64,{base64.b64encode(_read(path, 'faviconFile')).decode()}"


def hub_traits(branding: dict, login_service: str = "") -> dict:
    """JupyterHub traits for the branding section."""
    template_vars = {
        "jhub_title": branding["title"],
        "jhub_sign_in_text": branding["signInText"]
        or (f"Sign in with {login_service}" if login_service else "Sign in"),
    }
    if branding["announcement"]:
        template_vars["announcement"] = branding["announcement"]
    if branding["loginAnnouncement"]:
        template_vars["announcement_login"] = branding["loginAnnouncement"]
    if branding["faviconFile"]:
        template_vars["jhub_favicon"] = favicon_data_uri(branding["faviconFile"])
    traits = {"template_paths": [TEMPLATES_DIR], "template_vars": template_vars}
    if branding["logoFile"]:
        _read(branding["logoFile"], "logoFile")
        traits["logo_file"] = branding["logoFile"]
    return traits
