"""`Host`: one server of `jhub:nodes`, prepared and running MicroK8s, with its images in place.

Steps, each a Command named after the node (never its list position), ordered by depends_on:
teardown (removal only) -> scripts -> prepare -> upload -> install -> address -> images | registry ->
ready (then the facts). The node is Ready only once Calico runs, so readiness is awaited after the images.
A worker is awaited Ready only after its join (`create_ready`, called by the cluster): before it, it would
be a one-node cluster of its own, and its facts would say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi

from . import hostscripts as scripts
from ..bundle.locks import LockedFile
from ..settings import Settings
from ..settings.cluster import Node
from ..settings.validators import duration_seconds
from .transport import LOG_STDERR, NodeTarget

BUNDLE_DIR = "/var/lib/jhub/bundle"
IMPORT_SECONDS_PER_TARBALL = 1800


@dataclass(frozen=True)
class HostArgs:
    node: Node
    settings: Settings
    control_plane_address: str  # empty for a lone local node: the address step finds its own
    hosts_entries: tuple[str, ...]  # `address name` lines this node must resolve
    snaps: tuple[LockedFile, ...]  # empty in online mode
    images: tuple[LockedFile, ...]  # empty in online mode or with a registry mirror
    images_dir: Path


class Host(pulumi.ComponentResource):
    facts: pulumi.Output[dict]
    address: pulumi.Output[str]
    installed: list[pulumi.Resource]  # the node's steps up to its images: what a join waits for
    ready: list[pulumi.Resource]  # empty for a worker until the cluster calls create_ready after its join

    def __init__(self, args: HostArgs, opts: Optional[pulumi.ResourceOptions] = None):
        node = args.node
        super().__init__("jhub:hosts:Host", node.name, None, opts)
        self.node = node
        self.local = node.is_local
        self.target = NodeTarget(node, args.settings)
        self._args = args
        self._timeout = duration_seconds(args.settings.ssh.command_timeout)

        teardown = self._create_teardown()
        installed = self._create_scripts(after=[teardown])
        prepare = self._step("prepare", self._prepare_command(), after=[installed])
        uploads = self._create_upload(after=[prepare])
        install = self._step("install", self._install_command(), after=[prepare, *uploads])
        address = self._step("address", self._address_command(), after=[install])
        # pulumi-command makes every output secret when the connection holds a secret; an address and
        # the facts are not secret, and the inventory (`pulumi stack output nodes`) must stay readable
        self.address = pulumi.Output.unsecret(address.stdout.apply(lambda text: text.strip()))
        images = self._create_images_step(after=[address])
        self.installed = [address, *images]
        self.ready = []
        if node.is_control_plane:
            self.create_ready(after=self.installed)

    def create_ready(self, after) -> pulumi.Resource:
        """Ready, then the facts of the running node (stdout) for the inventory. The control plane's
        comes after its images; a worker's after its join."""
        facts = self.command("facts", timeout_s=120)
        ready = self._step("ready", f"( {self._ready_command()} ) && ( {facts} )", after=list(after),
                           logging=LOG_STDERR)
        self.facts = pulumi.Output.unsecret(ready.stdout.apply(_parse_facts))
        self.ready = [ready]
        self.register_outputs({"facts": self.facts, "address": self.address})
        return ready

    # -- helpers ----------------------------------------------------------------------------------

    def command(self, script: str, env: Optional[dict] = None, **kwargs) -> str:
        env = dict(env or {})
        if self.node.reset_id:
            # A reset may purge and reinstall MicroK8s: every later step of this node must run again.
            env.setdefault("JHUB_RESET_ID", self.node.reset_id)
        return scripts.command(script, env, **kwargs)

    def _step(self, step: str, create: str, *, after=(), logging: str = "stdoutAndStderr",
              delete: Optional[str] = None):
        return self.target.run(
            f"{self.node.name}-{step}",
            create=create,
            delete=delete,
            logging=logging,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )

    def _bundle_dir(self) -> str:
        # A local node reads the bundle where it lies; a remote one gets copies under BUNDLE_DIR.
        return str(self._args.images_dir) if self.local else BUNDLE_DIR

    # -- steps ------------------------------------------------------------------------------------

    def _create_teardown(self) -> pulumi.Resource:
        """Registered first, so Pulumi deletes it last, after the node left the cluster: remove the
        uploaded bundle and scripts, and MicroK8s itself only when `jhub:microk8s.removeOnDestroy` says so;
        only then are jhub's host settings (hosts entries, sysctl, modules, swap) and its record of MicroK8s
        undone too, since a kept MicroK8s keeps running on them. Best effort: a node that is gone for good
        does not block the removal."""
        keep = "0" if self._args.settings.microk8s.remove_on_destroy else "1"
        delete = self.command("uninstall", {"JHUB_PURGE": "1", "JHUB_KEEP_MICROK8S": keep}, timeout_s=1200)
        return self.target.best_effort(
            f"{self.node.name}-teardown", delete=delete, opts=pulumi.ResourceOptions(parent=self)
        )

    def _create_scripts(self, after) -> pulumi.Resource:
        """Ship hosts/*.sh to the node, a local one too: every step, its delete included, runs the copy in
        /var/lib/jhub/scripts/, so moving the checkout never breaks `pulumi destroy`. Re-run whenever a
        script changes (cheap: units already there are kept); the steps re-run only for their own script."""
        return self.target.run(
            f"{self.node.name}-scripts",
            create=scripts.install_command(),
            stdin=scripts.scripts_archive(),
            logging=LOG_STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )

    def _prepare_command(self) -> str:
        env = {
            "JHUB_NODE_NAME": self.node.name,
            "JHUB_HOSTS": scripts.lines(self._args.hosts_entries),
            "JHUB_BUNDLE_DIR": BUNDLE_DIR,
        }
        if self.target.ssh is not None:
            env["JHUB_BUNDLE_OWNER"] = self.target.ssh.user
        return self.command("prepare", env, timeout_s=300)

    def _create_upload(self, after) -> list[pulumi.Resource]:
        files = list(self._args.snaps) + list(self._args.images)
        if self.local or not files:
            return []
        return [self.target.upload(
            f"{self.node.name}-upload",
            [(self._args.images_dir / item.path, item.path, item.sha256 or "") for item in files],
            BUNDLE_DIR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )]

    def _install_command(self) -> str:
        settings = self._args.settings
        env = {
            "JHUB_MODE": settings.offline.mode,
            "JHUB_CHANNEL": settings.microk8s.channel,
            "JHUB_NODE_NAME": self.node.name,
            "JHUB_RESET_ID": self.node.reset_id,
        }
        if self._args.snaps:
            env["JHUB_SNAP_DIR"] = f"{self._bundle_dir()}/snaps"
            env["JHUB_SNAPS"] = scripts.lines(_snap_lines(self._args.snaps))
        return self.command("install", env, timeout_s=self._timeout)

    def _address_command(self) -> str:
        env = {"JHUB_CONTROL_PLANE_ADDRESS": self._args.control_plane_address}
        if self.node.interface:
            env["JHUB_INTERFACE"] = self.node.interface
        if self.node.address:
            env["JHUB_ADDRESS"] = self.node.address
        return self.command("node_address", env, timeout_s=300)

    def _create_images_step(self, after) -> list[pulumi.Resource]:
        offline = self._args.settings.offline
        # The build registry (jhub:offline.buildRegistry) with the site's CA: the nodes trust it for pulls.
        direct = offline.build_registry_host if offline.registry_ca_file else None
        if offline.uses_mirror or direct:
            env = {
                "JHUB_REGISTRY_MIRROR": offline.registry_mirror or "",
                "JHUB_REGISTRY_UPSTREAMS": scripts.lines(offline.mirror_lines()) if offline.uses_mirror else "",
            }
            if direct:
                env["JHUB_BUILD_REGISTRY"] = direct
            if offline.registry_ca_file:
                ca = Path(offline.registry_ca_file).expanduser()
                ca = ca if ca.is_absolute() else self._args.settings.project_dir / ca
                env["JHUB_REGISTRY_CA"] = ca.read_text()
            return [self._step("registry", self.command("registry", env, timeout_s=300), after=after)]
        if not self._args.images:
            return []
        env = {
            "JHUB_IMAGE_DIR": f"{self._bundle_dir()}/images",
            "JHUB_IMAGES": scripts.lines(image_lines(self._args.images)),
            "JHUB_IMPORT_TIMEOUT": str(IMPORT_SECONDS_PER_TARBALL),
        }
        timeout = 600 + IMPORT_SECONDS_PER_TARBALL * len(self._args.images)
        return [self._step("images", self.command("images", env, timeout_s=timeout), after=after)]

    def _ready_command(self) -> str:
        wait = duration_seconds(self._args.settings.microk8s.wait_ready_timeout)
        env = {"JHUB_NODE_NAME": self.node.name, "JHUB_WAIT_READY_TIMEOUT": str(wait)}
        return self.command("ready", env, timeout_s=wait + 120)


def image_lines(images: tuple[LockedFile, ...]) -> list[str]:
    """hosts/images.sh's `file sha256 ref[,ref...] digest` lines: the lock's manifest digest, which the
    import is checked against and pinned by, or `-` for an entry the bundle recorded none for."""
    return [f"{_plain(item.path)} {item.sha256} {','.join(item.refs)} {item.digest or '-'}" for item in images]


def _snap_lines(snaps: tuple[LockedFile, ...]) -> list[str]:
    """`name snapfile assertfile` in the lock's order (snapd, its bases, then microk8s)."""
    by_name: dict[str, dict[str, str]] = {}
    for item in snaps:
        by_name.setdefault(item.name, {})[item.kind] = item.path
    ordered = sorted(by_name, key=lambda name: name == "microk8s")  # stable: keeps the lock's order
    return [f"{name} {_plain(by_name[name]['snap'])} {_plain(by_name[name]['assertion'])}" for name in ordered]


def _plain(path: str) -> str:
    """Lock paths are `<folder>/<name>` (checked when the lock is read); scripts take the name."""
    return path.rsplit("/", 1)[-1]


def _parse_facts(text: str) -> dict:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {"error": "facts.sh printed invalid JSON", "raw": text[:200]}
