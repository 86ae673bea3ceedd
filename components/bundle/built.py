"""Images the project builds (images.lock `build:` entries: the portal, the notebook images), when `pulumi up`
must make them itself: in `online` mode nothing is bundled, so the admin machine builds each one with the
bundle's own builder (`scripts/bundle.py --build REF`, scripts/bundler/build.py: buildah, podman or docker
buildx), and every node imports the tarball through the hosts' image step (hosts/images.sh: sha256 and
manifest digest checked, pinned). With a registry mirror, air-gapped nodes import no tarballs, and a
`localhost/` image is in no registry: the bundled tarball is imported the same way, at the lock's sha256.

With `jhub:offline.buildRegistry` (`harbor.local/jhub`), nothing is imported on the nodes: the build step
(online) pushes the image it built to `<buildRegistry>/<name>:<tag>` (`scripts/bundle.py --build REF --push
REGISTRY`, the bundle's own OCI client, scripts/bundler/push.py); with a mirror, a push step
(`<slug>-image-push`, `--image REF --push REGISTRY`) pushes the bundled tarball. Every consumer then names
`<buildRegistry>/<name>:<tag>@<digest>` (`pinned`), the digest the step printed.

Air-gapped without a mirror, the cluster's own image step imports the bundled tarballs: nothing here.
Steps are named `<slug>-image-build`, `<node>-<slug>-image-copy` and `<node>-<slug>-image`, the slug being
the image's name without `jhub-` (`portal`, `notebook-cpu`).
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Iterable, Optional

import pulumi
import pulumi_command as command

from ..settings.base import reveal
from .locks import BuildSpec, Lock, LockedFile

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 3600  # a notebook image with CUDA and PyTorch takes long on a laptop
_SKIP = {"__pycache__", ".pytest_cache"}
PYTHON = 'py=python3; if [ -x .venv/bin/python ]; then py=.venv/bin/python; fi; '


def slug(ref: str) -> str:
    """`localhost/jhub-notebook-cpu:0.1.0` -> `notebook-cpu`."""
    name = ref.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return name[len("jhub-"):] if name.startswith("jhub-") else name


def from_project(path: Path) -> Path:
    """Relative to the project folder, where `pulumi up` runs: no stored command names the checkout."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def source_digest(spec: BuildSpec, root: Path = ROOT) -> str:
    """SHA-256 over the build context (paths and contents, sorted) and the spec: it changes exactly when a
    rebuild would make another image."""
    sha = hashlib.sha256(repr((spec.dockerfile, spec.target, spec.args)).encode() + b"\0")
    context = root / spec.context
    for path in sorted(p for p in context.rglob("*") if p.is_file() and not _SKIP & set(p.parts)
                       and p.suffix not in (".pyc", ".db")):
        sha.update(path.relative_to(context).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


def build_command(ref: str, images_dir: Path, registry: Optional[str] = None, bundled: bool = False) -> str:
    """The build step's shell: stdout is `<sha256> <digest>` of the tarball, all else goes to stderr. With
    `registry`, the image is pushed there too; `bundled`: the bundle's tarball is pushed, nothing built."""
    push = f" --push {shlex.quote(registry)}" if registry else ""
    return ("set -eu; " + PYTHON + f'"$py" scripts/bundle.py --dir {shlex.quote(str(from_project(images_dir)))} '
            f"--{'image' if bundled else 'build'} {shlex.quote(ref)}{push}")


def pushes(settings) -> bool:
    """Whether the built images go to the site's registry (`jhub:offline.buildRegistry`) instead of the nodes."""
    return must_import(settings) and settings.offline.build_registry is not None


def pulls_with_login(settings) -> bool:
    """Whether pods pull the built images with a login (`buildRegistryUsername`): then the hub's namespace holds
    a pull Secret (components/jupyterhub) and, with MPI, every user's namespace a copy (components/mpi)."""
    return pushes(settings) and bool(settings.offline.build_registry_username)


def registry_ref(ref: str, registry: str) -> str:
    """`localhost/jhub-portal:0.1.0` in `harbor.local/jhub` -> `harbor.local/jhub/jhub-portal:0.1.0` (the name
    scripts/bundler/push.py pushes to)."""
    return f"{registry}/{ref.rsplit('/', 1)[-1]}"


def pinned(entry: LockedFile, registry: str, built: pulumi.Output[str]) -> pulumi.Output[str]:
    """`<registry>/<name>:<tag>@<digest>` from the step's `<sha256> <digest>`: what pods pull."""
    target = registry_ref(entry.name, registry)

    def ref(out: str) -> str:
        digest = (out.split() + ["", ""])[1]
        if not digest.startswith("sha256:"):
            raise pulumi.RunError(f"jhub:offline.buildRegistry: pushing {entry.name} to {target} gave no "
                                  f"manifest digest (the step printed {out!r})")
        return f"{target}@{digest}"

    # With a push login the step's stdout is secret (its inputs are); the digest is not, and the values and
    # Deployments that name it stay readable in diffs.
    return pulumi.Output.unsecret(built.apply(ref))


def push_environment(settings) -> Optional[dict]:
    """The push's login and CA (`buildRegistryUsername`/`Password`, `registryCaFile`); the password stays a
    secret in the state."""
    offline = settings.offline
    env: dict = {}
    if offline.registry_ca_file:
        env["JHUB_REGISTRY_CA_FILE"] = str(Path(offline.registry_ca_file).expanduser())  # relative: the project's
    if offline.build_registry_username:
        env["JHUB_PUSH_USERNAME"] = offline.build_registry_username
        env["JHUB_PUSH_PASSWORD"] = pulumi.Output.secret(reveal(offline.build_registry_password))
    return env or None


def needed(lock: Lock, refs: Iterable[str]) -> list[LockedFile]:
    """The lock's `build:` entries for these references, each once, in the lock's order: an image built
    FROM another one of the project's comes after it there, and is built after it."""
    wanted = set(refs)
    return [entry for entry in lock.images if entry.build is not None and wanted & set(entry.refs)]


def must_import(settings) -> bool:
    """Whether `pulumi up` itself puts built images on the nodes (see the module's text)."""
    return not settings.offline.air_gapped or settings.offline.uses_mirror


def build_or_bundled(parent: pulumi.Resource, entry: LockedFile, settings, images_dir: Path,
                     trigger: Optional[str] = None, after: Optional[list] = None) -> pulumi.Output[str]:
    """`<sha256> <digest>` of the tarball the nodes import: built here (online, after the steps in `after`:
    one build at a time), or the bundle's. With `jhub:offline.buildRegistry`, pushed there as well (see the
    module's text): the same `<sha256> <digest>`."""
    registry = settings.offline.build_registry if pushes(settings) else None
    if settings.offline.air_gapped:
        if not entry.sha256 or (registry and not entry.digest):
            raise pulumi.RunError(f"offline-images/images.lock: {entry.name} is not bundled yet: run "
                                  "scripts/bundle.py on a connected machine with buildah, podman or docker buildx "
                                  "(a registry mirror cannot serve a localhost/ image)")
        if registry is None:
            return pulumi.Output.from_input(f"{entry.sha256} {entry.digest or '-'}")
        step, create = "push", build_command(entry.name, images_dir, registry, bundled=True)
        triggers = [entry.sha256, registry_ref(entry.name, registry)]
    else:
        assert entry.build is not None
        step, create = "build", build_command(entry.name, images_dir, registry)
        triggers = [trigger or source_digest(entry.build)] + ([registry_ref(entry.name, registry)] if registry else [])
    built = command.local.Command(
        f"{slug(entry.name)}-image-{step}",
        create=create,
        triggers=triggers,
        environment=push_environment(settings) if registry else None,
        interpreter=["/bin/sh", "-c"],
        add_previous_output_in_env=False,
        logging=command.local.Logging.STDERR,
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=list(after or []),
            custom_timeouts=pulumi.CustomTimeouts(create=f"{BUILD_TIMEOUT_S}s", update=f"{BUILD_TIMEOUT_S}s")),
    )
    if after is not None:
        after.append(built)
    return built.stdout.apply(lambda out: (out or "").strip())


def import_on(parent: pulumi.Resource, host, entry: LockedFile, images_dir: Path, built: pulumi.Output[str],
              after: list) -> pulumi.Resource:
    """Copy the tarball to one node (remote nodes) and import it there with hosts/images.sh."""
    from ..cluster.host import BUNDLE_DIR, IMPORT_SECONDS_PER_TARBALL as timeout_s

    node, name = host.node, slug(entry.name)
    sha = built.apply(lambda out: out.split()[0] if out else "")
    steps = list(after)
    if not host.local:
        files = sha.apply(lambda s: [(images_dir / entry.path, entry.path, s)])
        steps = [host.target.upload(f"{node.name}-{name}-image-copy", files, BUNDLE_DIR,
                                    opts=pulumi.ResourceOptions(parent=parent, depends_on=steps))]

    def line(out: str) -> str:
        sha256, _, digest = out.partition(" ")
        return f"{Path(entry.path).name} {sha256} {','.join(entry.refs)} {digest or '-'}"

    def create(out: str) -> str:
        imports = host.command("images", {
            "JHUB_IMAGE_DIR": f"{BUNDLE_DIR}/images", "JHUB_IMAGES": line(out),
            "JHUB_IMPORT_TIMEOUT": str(timeout_s)}, timeout_s=600 + timeout_s)
        # Both kinds of node import from BUNDLE_DIR (hosts/images.sh takes an absolute folder only); a local
        # node first copies the tarball there from where the build left it, a path relative to the project
        # folder, so no stored command names the checkout.
        return (local_copy(images_dir, entry.path) + imports) if host.local else imports

    return host.target.run(f"{node.name}-{name}-image", create=built.apply(create), logging="stderr",
                           triggers=[sha], opts=pulumi.ResourceOptions(parent=parent, depends_on=steps + host.ready))


def local_copy(images_dir: Path, rel: str) -> str:
    """Shell that puts `images_dir/rel` at BUNDLE_DIR/rel on this machine (root, or sudo -n)."""
    from ..cluster.host import BUNDLE_DIR

    source = shlex.quote(str(from_project(images_dir) / rel))
    target = shlex.quote(f"{BUNDLE_DIR}/{rel}")
    return (f'S=; [ "$(id -u)" = 0 ] || S="sudo -n"; $S install -D -m 0644 {source} {target}.part '
            f"&& $S mv -f {target}.part {target} || exit 1; ")
