"""`Host`: one server of `jhub:nodes`, prepared and running MicroK8s, with its images in place.

Steps, each a Command named after the node (never its list position), ordered by depends_on:
facts -> prepare -> (uploads) -> install -> address -> images | registry mirror.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pulumi

from . import hostscripts as scripts
from .bundle.locks import LockedFile
from .settings import Settings
from .settings.cluster import Node
from .settings.validators import duration_seconds
from .transport import LOG_STDERR, NodeTarget

BUNDLE_DIR = "/var/lib/jhub/bundle"


@dataclass(frozen=True)
class HostArgs:
    node: Node
    settings: Settings
    control_plane_address: str
    hosts_entries: tuple[str, ...]  # `address name` lines this node must resolve
    snaps: tuple[LockedFile, ...]  # empty in online mode
    images: tuple[LockedFile, ...]  # empty in online mode or with a registry mirror
    images_dir: Path


class Host(pulumi.ComponentResource):
    facts: pulumi.Output[dict]
    ready: list[pulumi.Resource]

    def __init__(self, args: HostArgs, opts: Optional[pulumi.ResourceOptions] = None):
        node = args.node
        super().__init__("jhub:hosts:Host", node.name, None, opts)
        self.node = node
        self.target = NodeTarget(node, args.settings)
        self._args = args
        self._timeout = duration_seconds(args.settings.ssh.command_timeout)

        teardown = self._create_teardown()
        facts = self._step("facts", scripts.command("facts", timeout_s=120), logging=LOG_STDERR,
                           after=[teardown] if teardown is not None else [])
        self.facts = facts.stdout.apply(_parse_facts)
        prepare = self._step("prepare", self._prepare_command(), after=[facts])
        uploads = self._create_uploads(after=[prepare])
        install = self._step("install", self._install_command(), after=[prepare, *uploads])
        address = self._step("address", self._address_command(), after=[install])
        self.address = address.stdout.apply(lambda text: text.strip())
        images = self._create_images_step(after=[install])
        self.ready = [install, address] + ([images] if images is not None else [])
        self.register_outputs({"facts": self.facts, "address": self.address})

    # -- steps ------------------------------------------------------------------------------------

    def _step(self, step: str, create: str, *, after=(), logging: str = "stdoutAndStderr",
              delete: Optional[str] = None):
        return self.target.run(
            f"{self.node.name}-{step}",
            create=create,
            delete=delete,
            logging=logging,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )

    def _create_teardown(self) -> Optional[pulumi.Resource]:
        """Registered first, so Pulumi deletes it last: after the node has left the cluster, remove the
        uploaded bundle copies, and MicroK8s itself only when `jhub:microk8s.removeOnDestroy` says so.
        Best effort: a node that is gone for good does not block `pulumi destroy`."""
        if self._args.settings.microk8s.remove_on_destroy:
            delete = scripts.command("uninstall", {"JHUB_PURGE": "1"}, timeout_s=900)
        elif not self.node.is_local:
            delete = scripts.command("cleanup", {"JHUB_BUNDLE_DIR": BUNDLE_DIR}, timeout_s=300)
        else:
            return None  # a local node reads the bundle in place: nothing was copied
        return self.target.best_effort(
            f"{self.node.name}-teardown", delete=delete, opts=pulumi.ResourceOptions(parent=self)
        )

    def _prepare_command(self) -> str:
        env = {
            "JHUB_NODE_NAME": self.node.name,
            "JHUB_HOSTS": scripts.lines(self._args.hosts_entries),
            "JHUB_BUNDLE_DIR": self._bundle_dir(),
        }
        if self.target.ssh is not None:
            env["JHUB_BUNDLE_OWNER"] = self.target.ssh.user
        return scripts.command("prepare", env, timeout_s=300)

    def _bundle_dir(self) -> str:
        # A local node reads the bundle where it lies; a remote one gets copies under BUNDLE_DIR.
        return str(self._args.images_dir) if self.node.is_local else BUNDLE_DIR

    def _create_uploads(self, after) -> list[pulumi.Resource]:
        if self.node.is_local:
            return []
        files = list(self._args.snaps) + list(self._args.images)
        return [
            self.target.upload(
                f"{self.node.name}-upload-{item.path}",
                self._args.images_dir / item.path,
                f"{BUNDLE_DIR}/{item.path}",
                item.sha256 or "",
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
            )
            for item in files
        ]

    def _install_command(self) -> str:
        settings = self._args.settings
        snaps = _snap_lines(self._args.snaps)
        env = {
            "JHUB_MODE": settings.offline.mode,
            "JHUB_CHANNEL": settings.microk8s.channel,
            "JHUB_SNAP_DIR": self._bundle_dir(),
            "JHUB_SNAPS": scripts.lines(snaps),
            "JHUB_RESET": "1" if self.node.reset else "0",
            "JHUB_WAIT_READY_TIMEOUT": str(duration_seconds(settings.microk8s.wait_ready_timeout)),
        }
        return scripts.command("install", env, timeout_s=self._timeout)

    def _address_command(self) -> str:
        env = {"JHUB_CONTROL_PLANE_ADDRESS": self._args.control_plane_address}
        if self.node.interface:
            env["JHUB_INTERFACE"] = self.node.interface
        if self.node.address:
            env["JHUB_ADDRESS"] = self.node.address
        return scripts.command("node_address", env, timeout_s=300)

    def _create_images_step(self, after) -> Optional[pulumi.Resource]:
        offline = self._args.settings.offline
        if offline.uses_mirror:
            env = {
                "JHUB_REGISTRY_MIRROR": offline.registry_mirror or "",
                "JHUB_REGISTRY_UPSTREAMS": scripts.lines(offline.mirror_lines()),
            }
            if offline.registry_ca_file:
                ca = Path(offline.registry_ca_file).expanduser()
                ca = ca if ca.is_absolute() else self._args.settings.project_dir / ca
                env["JHUB_REGISTRY_CA"] = ca.read_text()
            return self._step("registry", scripts.command("registry", env, timeout_s=300), after=after)
        if not self._args.images:
            return None
        env = {
            "JHUB_IMAGE_DIR": self._bundle_dir(),
            "JHUB_IMAGES": scripts.lines(
                f"{item.path} {item.sha256} {','.join(item.refs)}" for item in self._args.images
            ),
        }
        return self._step("images", scripts.command("images", env, timeout_s=self._timeout), after=after)


def _snap_lines(snaps: tuple[LockedFile, ...]) -> list[str]:
    """`name snapfile assertfile`, base snaps first, as hosts/install.sh reads them."""
    by_name: dict[str, dict[str, str]] = {}
    for item in snaps:
        by_name.setdefault(item.name, {})[item.kind] = item.path
    ordered = sorted(by_name, key=lambda name: (name == "microk8s", name))
    return [f"{name} {by_name[name]['snap']} {by_name[name]['assertion']}" for name in ordered]


def _parse_facts(text: str) -> dict:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {"error": "facts.sh printed invalid JSON", "raw": text[:200]}
