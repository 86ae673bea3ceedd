"""Online mode: the portal image has no registry of ours, so `pulumi up` builds it on the admin machine from
portal/Dockerfile (docker, podman or buildah), saves it as a tarball beside the offline bundle, and every
node imports it through the hosts' own image step (hosts/images.sh: sha256-checked, pinned). Air-gapped, the
bundle already holds the tarball (images.lock `build:` entry) and the cluster's image step imports it."""

from __future__ import annotations

import shlex
from pathlib import Path

import pulumi
import pulumi_command as command

from ..cluster import Host
from ..cluster.host import BUNDLE_DIR, IMPORT_SECONDS_PER_TARBALL
from ..cluster.ssh_client import upload_script
from . import images as im
from .offline import PORTAL_DIR

BUILD_TIMEOUT_S = 1800


def build_script(portal_dir: Path, tarball: Path) -> str:
    """Build and save the image, then print the tarball's sha256 (the step's only stdout)."""
    d, t, ref = shlex.quote(str(portal_dir)), shlex.quote(str(tarball)), shlex.quote(im.PORTAL_IMAGE)
    return (
        "set -eu; "
        f"mkdir -p {shlex.quote(str(tarball.parent))}; "
        "if command -v docker >/dev/null 2>&1; then "
        f"docker build -q -t {ref} {d} >&2 && docker save -o {t}.part {ref}; "
        "elif command -v podman >/dev/null 2>&1; then "
        f"podman build -q -t {ref} {d} >&2 && podman save --format docker-archive -o {t}.part {ref}; "
        "elif command -v buildah >/dev/null 2>&1; then "
        f"buildah bud -q -t {ref} {d} >&2 && buildah push {ref} docker-archive:{t}.part:{ref} >&2; "
        "else echo 'jhub[portal-image]: online mode builds the portal image here: install docker, podman or "
        "buildah, or run scripts/bundle.py on a machine that has one and copy offline-images/' >&2; exit 1; fi; "
        f"mv -f {t}.part {t}; sha256sum {t} | cut -d' ' -f1"
    )


def _from_project(path: Path) -> Path:
    project = PORTAL_DIR.parent
    return path.relative_to(project) if path.is_relative_to(project) else path


def build_image(parent: pulumi.Resource, images_dir: Path, digest: str) -> pulumi.Output[str]:
    """The build step (runs again when portal/ changes); its output is the tarball's sha256."""
    tarball = images_dir / im.PORTAL_IMAGE_FILE
    built = command.local.Command(
        "portal-image-build",
        # Paths relative to the project folder, where `pulumi up` runs: a moved checkout keeps working.
        create=build_script(_from_project(PORTAL_DIR), _from_project(tarball)),
        triggers=[digest],
        interpreter=["/bin/sh", "-c"],
        add_previous_output_in_env=False,
        logging=command.local.Logging.STDERR,
        opts=pulumi.ResourceOptions(parent=parent, custom_timeouts=pulumi.CustomTimeouts(
            create=f"{BUILD_TIMEOUT_S}s", update=f"{BUILD_TIMEOUT_S}s")),
    )
    return built.stdout.apply(lambda out: (out or "").strip())


def import_image(parent: pulumi.Resource, host: Host, images_dir: Path, sha: pulumi.Output[str],
                 after: list) -> pulumi.Resource:
    """Copy the tarball to one node (remote nodes) and import it there with hosts/images.sh."""
    name = Path(im.PORTAL_IMAGE_FILE).name
    node = host.node
    # A local node reads the tarball where the build left it, relative to the project folder (where
    # `pulumi up` runs), so no command names the checkout's path.
    folder = str(_from_project(images_dir)) if host.local else BUNDLE_DIR
    steps = list(after)
    if not host.local:
        assert host.target.ssh is not None
        ssh = host.target.ssh
        upload = command.local.Command(
            f"{node.name}-portal-image-copy",
            create=sha.apply(lambda s: upload_script(ssh, node.name, [(images_dir / im.PORTAL_IMAGE_FILE,
                                                                       im.PORTAL_IMAGE_FILE, s)], BUNDLE_DIR)),
            stdin=host.target._credential(),
            interpreter=["/bin/sh", "-c"],
            add_previous_output_in_env=False,
            logging=command.local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=steps),
        )
        steps = [upload]
    create = sha.apply(lambda s: host.command("images", {
        "JHUB_IMAGE_DIR": f"{folder}/images", "JHUB_IMAGES": f"{name} {s} {im.PORTAL_IMAGE}",
        "JHUB_IMPORT_TIMEOUT": str(IMPORT_SECONDS_PER_TARBALL)}, timeout_s=600 + IMPORT_SECONDS_PER_TARBALL))
    return host.target.run(f"{node.name}-portal-image", create=create, logging="stderr",
                           triggers=[sha], opts=pulumi.ResourceOptions(parent=parent, depends_on=steps + host.ready))
