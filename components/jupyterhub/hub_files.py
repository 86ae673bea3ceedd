"""The hub-side Python (`hub/jhub_*.py`), its templates (`hub/templates/`) and the branding files, as the
chart's `hub.extraFiles`, plus the `hub.extraConfig` snippet that hands `custom.jhub` to `jhub_setup`.

Reading files is kept apart from building values: `read_hub_sources` and `read_branding` touch the disk,
`extra_files` is pure.
"""

from __future__ import annotations

import base64
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from ..settings.hub_checks import branding_path
from .chart import HUB_BRANDING_DIR, HUB_CA_FILE, HUB_CODE_DIR

_KEY_RE = re.compile(r"[^-._a-zA-Z0-9]")

ENTRY_POINT = f"""\
# jhub: hub-side Python from hub/ (mounted through hub.extraFiles), configured from custom.jhub.
import sys
sys.path.insert(0, {HUB_CODE_DIR!r})
import jhub_setup
jhub_setup.configure(c, get_config("custom.jhub"))
"""


@dataclass(frozen=True)
class HubFile:
    path: str  # relative to its folder in the hub pod, e.g. "jhub_setup.py" or "templates/login.html"
    content: bytes


def read_hub_sources(project_dir: Path) -> tuple[HubFile, ...]:
    """Every module and template under hub/, in a stable order."""
    base = project_dir / "hub"
    found = sorted(base.glob("jhub_*.py")) + sorted(p for p in (base / "templates").rglob("*") if p.is_file())
    return tuple(HubFile(p.relative_to(base).as_posix(), p.read_bytes()) for p in found)


def read_branding(project_dir: Path, branding) -> tuple[HubFile, ...]:
    """Logo and favicon, renamed to `logo<ext>` / `favicon<ext>` so config paths never leak into the pod."""
    files = []
    for field in ("logo", "favicon"):
        path = getattr(branding, field)
        if path is not None:
            suffix = Path(path).suffix.lower()
            files.append(HubFile(f"{field}{suffix}", branding_path(project_dir, path).read_bytes()))
    return tuple(files)


def branding_pod_path(files: tuple[HubFile, ...], field: str) -> str:
    """Where a branding file is in the hub pod, or "" when not configured."""
    match = next((f for f in files if f.path.startswith(f"{field}.") or f.path == field), None)
    return posixpath.join(HUB_BRANDING_DIR, match.path) if match else ""


def _entry(folder: str, item: HubFile, binary: bool) -> dict:
    entry = {"mountPath": posixpath.join(folder, item.path)}
    if binary:
        entry["binaryData"] = base64.b64encode(item.content).decode("ascii")
    else:
        entry["stringData"] = item.content.decode("utf-8")
    return entry


def extra_files(sources: tuple[HubFile, ...], branding: tuple[HubFile, ...], ca_certificate: str | None = None) -> dict:
    files = {}
    for prefix, folder, items, binary in (("jhub", HUB_CODE_DIR, sources, False),
                                          ("branding", HUB_BRANDING_DIR, branding, True)):
        for item in items:
            key = _KEY_RE.sub("-", f"{prefix}-{item.path}")
            files[key] = _entry(folder, item, binary)
    if ca_certificate:  # a public certificate: plain text in the values is fine
        files["jhub-ca-crt"] = {"mountPath": HUB_CA_FILE, "stringData": ca_certificate}
    return dict(sorted(files.items()))


def extra_config() -> dict:
    return {"jhub": ENTRY_POINT}
