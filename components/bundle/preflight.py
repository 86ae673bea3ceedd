"""Air-gapped preflight: every file the config needs is in the bundle with the right sha256.

Runs before any resource is registered, so a missing tarball is named before a host is touched. Checksums
of big files are cached by (size, mtime) in the bundle folder, so a second `pulumi up` does not re-read
gigabytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pulumi

from ..settings import Settings
from .locks import IMAGE_LOCK, Lock, LockedFile
from .needs import configured_images, needed_charts, needed_images, needed_manifests, needed_snaps

CACHE_NAME = ".sha256-cache.json"


class PreflightError(pulumi.RunError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        count = len(problems)
        head = (
            f"offline preflight: {count} file{'s' if count != 1 else ''} of the offline bundle "
            "missing or wrong; nothing was done on any host. Build the bundle with "
            "`python scripts/bundle.py` on a connected machine and copy offline-images/ and charts/ here:"
        )
        super().__init__("\n".join([head] + [f"  - {p}" for p in problems]))


def sha256_of(path: Path, cache: dict) -> str:
    stat = path.stat()
    key = f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
    if cache.get(str(path)) and cache[str(path)]["key"] == key:
        return cache[str(path)]["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    cache[str(path)] = {"key": key, "sha256": digest.hexdigest()}
    return digest.hexdigest()


def _check(base: Path, item: LockedFile, display_base: str, cache: dict) -> str | None:
    shown = f"{display_base}/{item.path}"
    if item.sha256 is None:
        return f"{item.describe()}: not bundled yet ({item.lock} has no sha256 for {shown})"
    path = base / item.path
    if not path.is_file():
        return f"{item.describe()}: {shown} is missing"
    actual = sha256_of(path, cache)
    if actual != item.sha256:
        return f"{item.describe()}: {shown} has sha256 {actual[:12]}..., {item.lock} says {item.sha256[:12]}..."
    return None


def _load_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(path: Path, cache: dict) -> None:
    try:
        path.write_text(json.dumps(cache, sort_keys=True, indent=1))
    except OSError:
        pass  # a read-only bundle only costs a re-hash next time


def offline_dirs(settings: Settings) -> tuple[Path, Path]:
    return (settings.project_dir / settings.offline.dir, settings.project_dir / settings.offline.charts_dir)


def preflight(settings: Settings, lock: Lock) -> None:
    """Raise PreflightError naming every missing or wrong file; nothing to check in online mode."""
    if not settings.offline.air_gapped:
        return
    images_dir, charts_dir = offline_dirs(settings)
    cache_path = images_dir / CACHE_NAME
    cache = _load_cache(cache_path)
    problems: list[str] = []

    snaps = needed_snaps(settings, lock)
    if not any(f.name == "microk8s" for f in snaps):
        problems.append(
            f"snap microk8s {settings.microk8s.channel}: {IMAGE_LOCK} has no microk8s snap for the channel "
            "jhub:microk8s.channel asks for"
        )
    if not settings.offline.uses_mirror:
        for key, ref in configured_images(settings):
            if lock.image_for(ref) is None:
                problems.append(f"image {ref} ({key}): not listed in {settings.offline.dir}/{IMAGE_LOCK}")
    for item in snaps + needed_images(settings, lock):
        problem = _check(images_dir, item, settings.offline.dir, cache)
        if problem:
            problems.append(problem)
    for item in needed_charts(settings, lock) + needed_manifests(settings, lock):
        problem = _check(charts_dir, item, settings.offline.charts_dir, cache)
        if problem:
            problems.append(problem)
    _save_cache(cache_path, cache)
    if problems:
        raise PreflightError(problems)
