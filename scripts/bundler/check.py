"""What `scripts/bundle.py --check` adds to the preflight (which checks files against their sha256): the
lock records the digests the import needs, each tarball's index names the recorded manifest digest, each
snap's sha3-384 and assertion agree with the lock, and no download was left half done."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Iterable, Optional

from .fetch import file_digest, part_path
from .snapstore import assertion_headers, sha3_384_b64

RERUN = "run `python scripts/bundle.py` on a connected machine"


def tarball_index(path: Path) -> Optional[dict]:
    """index.json of an image tarball, or None when it has none (a docker-archive)."""
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.name in ("index.json", "./index.json") and member.isfile():
                    return json.loads(tar.extractfile(member).read())
    except (tarfile.TarError, OSError, ValueError):
        return None
    return None


def check_image(entry: dict, images_dir: Path) -> list[str]:
    name, path = f"image {entry['ref']}", images_dir / entry["file"]
    problems = _partials(name, path)
    if not entry.get("digest"):
        problems.append(f"{name}: images.lock records no manifest digest; {RERUN} to fetch it by digest")
        return problems
    if not path.is_file():
        return problems  # the preflight names missing files
    index = tarball_index(path)
    if index is None:
        return problems + [f"{name}: {entry['file']} is not an OCI image tarball with an index.json; {RERUN}"]
    named = {(m.get("annotations") or {}).get("io.containerd.image.name"): m.get("digest")
             for m in index.get("manifests") or []}
    for ref in [entry["ref"]] + list(entry.get("alsoTagged") or []):
        if named.get(ref) != entry["digest"]:
            problems.append(f"{name}: {entry['file']} holds {ref} as {named.get(ref) or 'nothing'}, images.lock "
                            f"says {entry['digest']}; {RERUN}")
    return problems


def check_snap(entry: dict, images_dir: Path) -> list[str]:
    name, path = f"snap {entry['name']} {entry['channel']}", images_dir / entry["file"]
    problems = _partials(name, path)
    if not entry.get("sha3_384") or not entry.get("revision"):
        return problems + [f"{name}: images.lock records no revision and sha3_384; {RERUN}"]
    if path.is_file():
        actual = sha3_384_b64(file_digest(path, "sha3_384"))
        if actual != entry["sha3_384"]:
            problems.append(f"{name}: {entry['file']} has sha3-384 {actual[:12]}..., images.lock says "
                            f"{entry['sha3_384'][:12]}...; {RERUN}")
    assertion = images_dir / entry["assertion"]
    if assertion.is_file():
        parts = ("\n" + assertion.read_text()).split("\ntype: snap-revision\n")[1:]
        revisions = [assertion_headers(part) for part in parts]
        if not any(h.get("snap-sha3-384") == entry["sha3_384"] and h.get("snap-revision") == str(entry["revision"])
                   for h in revisions):
            problems.append(f"{name}: {entry['assertion']} has no snap-revision assertion for revision "
                            f"{entry['revision']} with the sha3-384 images.lock records; {RERUN}")
    return problems


def _partials(name: str, path: Path) -> list[str]:
    part = part_path(path)
    if part.exists():
        return [f"{name}: an interrupted download left {part.name} ({part.stat().st_size} bytes); {RERUN} to finish it"]
    return []


def check_bundle(images: dict, images_dir: Path, chosen: Iterable[str]) -> list[str]:
    """Problems of the lock entries whose file is in `chosen`."""
    wanted = set(chosen)
    problems: list[str] = []
    for entry in images.get("snaps") or []:
        if entry["file"] in wanted:
            problems += check_snap(entry, images_dir)
    for entry in images.get("images") or []:
        if entry["file"] in wanted:
            problems += check_image(entry, images_dir)
    return problems
