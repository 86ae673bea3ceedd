"""Images this project builds itself (the portal, `portal/Dockerfile`; the notebook images,
`images/notebook/Dockerfile`): a lock entry with `build: <context folder>` or
`build: {context:, dockerfile:, target:, args: {NAME: value}}`, relative to the repository
(`components.bundle.locks.BuildSpec`). The one builder: `scripts/bundle.py` records what it built in the
lock; `pulumi up` in online mode runs `scripts/bundle.py --build REF` (components/builds/), which builds the
same way and prints the tarball's sha256 and manifest digest without touching the lock.

The image is built for linux/amd64 by the first builder found -- `buildah`, `podman`, or `docker buildx`
(which needs a builder that can export OCI, e.g. `docker buildx create --use`) -- written as an OCI layout
and then into the same tarball shape as pulled images (`ociarchive`), so the lock gets its manifest digest
too. Without any of them the bundle refuses and names what to install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from components.bundle.locks import BuildSpec, LockError

from . import BundleError
from .fetch import file_digest
from .oci import INDEX_TYPES, PLATFORM
from .ociarchive import write_archive

INSTALL_HINT = ("building images needs buildah (apt-get install buildah), podman, or docker with buildx; "
                "none was found on PATH")


def _build_spec(entry: dict, root: Path) -> tuple[BuildSpec, Path, Path]:
    try:
        spec = BuildSpec.parse(entry["build"], f"image {entry['ref']}")
    except LockError as error:
        raise BundleError(str(error)) from None
    context = (root / spec.context).resolve()
    dockerfile = context / spec.dockerfile
    if not dockerfile.is_file():
        raise BundleError(f"image {entry['ref']}: {dockerfile} does not exist (the lock's build.context)")
    return spec, context, dockerfile


def commands(tool: str, ref: str, context: Path, dockerfile: Path, layout: Path,
             spec: Optional[BuildSpec] = None) -> list[list[str]]:
    name = Path(tool).name
    options = ["--platform", "linux/amd64", "-f", str(dockerfile)]
    if spec is not None and spec.target:
        options += ["--target", spec.target]
    for key, value in spec.args if spec is not None else ():
        options += ["--build-arg", f"{key}={value}"]
    if name in ("buildah", "podman"):
        build = [tool, "bud" if name == "buildah" else "build", *options, "-t", ref, str(context)]
        return [build, [tool, "push", ref, f"oci:{layout}:{ref.rsplit(':', 1)[-1]}"]]
    return [[tool, "buildx", "build", *options, "-t", ref,
             "--output", f"type=oci,dest={layout},tar=false", str(context)]]


def find_builder(which: Callable[[str], Optional[str]] = shutil.which) -> str:
    for name in ("buildah", "podman", "docker"):
        if which(name):
            return which(name)
    raise BundleError(INSTALL_HINT)


def archive_from_layout(layout: Path, target: Path, names: list[str]) -> str:
    """Write an OCI layout's linux/amd64 image as the bundle's tarball; returns its manifest digest."""
    def blob(digest: str) -> Path:
        return layout / "blobs" / digest.replace(":", "/")

    index = json.loads((layout / "index.json").read_text())
    descriptor = None
    for _ in range(3):
        entries = index.get("manifests") or []
        amd64 = [m for m in entries if m.get("platform") is None or
                 all(m["platform"].get(k) == v for k, v in PLATFORM.items())]
        if not amd64:
            raise BundleError(f"{layout}: the build produced no linux/amd64 image")
        descriptor = amd64[0]
        if descriptor.get("mediaType") not in INDEX_TYPES:
            break
        index = json.loads(blob(descriptor["digest"]).read_bytes())
    manifest = blob(descriptor["digest"]).read_bytes()
    document = json.loads(manifest)
    blobs = {d["digest"]: blob(d["digest"]) for d in [document["config"]] + list(document.get("layers") or [])}
    for digest, path in blobs.items():
        if "sha256:" + file_digest(path, "sha256") != digest:
            raise BundleError(f"{layout}: blob {digest} does not match its digest")
    write_archive(target, names=names, manifest=manifest, media_type=descriptor["mediaType"],
                  digest=descriptor["digest"], blobs=blobs)
    return descriptor["digest"]


def build_image(entry: dict, images_dir: Path, root: Path, *, which=shutil.which) -> None:
    """Build the entry's image into `images_dir/<file>`; records its `digest` and `sha256` in the entry. The
    builder's output goes to stderr, so a caller's stdout carries only what it prints itself."""
    spec, context, dockerfile = _build_spec(entry, root)
    tool = find_builder(which)
    names = [entry["ref"]] + list(entry.get("alsoTagged") or [])
    with tempfile.TemporaryDirectory(prefix="jhub-build-") as tmp:
        layout = Path(tmp) / "layout"
        for argv in commands(tool, entry["ref"], context, dockerfile, layout, spec):
            print("+ " + " ".join(argv), file=sys.stderr, flush=True)
            if subprocess.run(argv, stdout=sys.stderr).returncode != 0:
                raise BundleError(f"image {entry['ref']}: `{' '.join(argv[:2])}` failed (its output is above)")
        target = images_dir / entry["file"]
        entry["digest"] = archive_from_layout(layout, target, names)
    entry["sha256"] = file_digest(target, "sha256")
