"""The hub-side Python (`hub/jhub_*.py`) and its templates (`hub/templates/`) as the chart's `hub.extraFiles`,
the `hub.extraConfig` snippet that hands `custom.jhub` to `jhub_setup`, and the branding files' volume.

Logo and favicon never enter the values: the chart copies the values into the hub Secret (and `hub.extraFiles`
a second time), Helm stores them again in its release Secret, and each object is limited to 1 MiB. The
component puts each branding file in a ConfigMap of its own (`manifests.branding_config_map`), which
`hub.extraVolumes` mounts (one projected volume) at `HUB_BRANDING_DIR`. The code and templates (~75 KiB) stay
in `hub.extraFiles`, so the hub Secret holds about 180 KiB whatever the branding.

Reading files is kept apart from building values: `read_hub_sources` and `read_branding` touch the disk,
`extra_files` and `branding_volume` are pure.
"""

from __future__ import annotations

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


def _entry(folder: str, item: HubFile) -> dict:
    return {"mountPath": posixpath.join(folder, item.path), "stringData": item.content.decode("utf-8")}


BRANDING_VOLUME = "jhub-branding"


def branding_volume(files: tuple[HubFile, ...], config_maps: tuple[str, ...]) -> tuple[list, list]:
    """(`hub.extraVolumes`, `hub.extraVolumeMounts`): the branding ConfigMaps (one per file, names in the
    order of `files`) as one read-only folder, `HUB_BRANDING_DIR`."""
    if len(files) != len(config_maps):
        raise ValueError(f"{len(files)} branding files but {len(config_maps)} ConfigMaps")
    if not files:
        return [], []
    sources = [{"configMap": {"items": [{"key": f.path, "path": f.path}], "name": name}}
               for f, name in zip(files, config_maps)]
    volume = {"name": BRANDING_VOLUME, "projected": {"defaultMode": 0o444, "sources": sources}}
    mount = {"mountPath": HUB_BRANDING_DIR, "name": BRANDING_VOLUME, "readOnly": True}
    return [volume], [mount]


def extra_files(sources: tuple[HubFile, ...], ca_certificate: str | None = None) -> dict:
    files = {}
    for item in sources:
        files[_KEY_RE.sub("-", f"jhub-{item.path}")] = _entry(HUB_CODE_DIR, item)
    if ca_certificate:  # a public certificate: plain text in the values is fine
        files["jhub-ca-crt"] = {"mountPath": HUB_CA_FILE, "stringData": ca_certificate}
    return dict(sorted(files.items()))


def extra_config() -> dict:
    return {"jhub": ENTRY_POINT}
