"""How commands reach a node: SSH through pulumi-command, or the local shell for `host: local`.

`NodeTarget` makes every Command of one node the same way: one connection object (secrets wrapped as
Pulumi secrets), no previous output leaking into the next run's environment, and log output chosen per
step (steps that print secrets log nothing). Two kinds of step run from the admin machine with the
OpenSSH client instead (see `ssh_client.py`): bundle uploads, which must not re-hash gigabytes on every
run, and removal steps, which must not block when a node is gone for good.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import pulumi
import pulumi_command as command

from . import ssh_client
from ..settings import Settings
from ..settings.base import reveal
from ..settings.cluster import Node

LOG_ALL = "stdoutAndStderr"
LOG_STDERR = "stderr"
LOG_NONE = "none"


def _read_key_file(project_dir: Path, path: str) -> str:
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = project_dir / resolved
    return resolved.read_text()


def ssh_params(node: Node, settings: Settings) -> ssh_client.SshParams:
    """The effective connection of a node: per-node fields override `jhub:ssh`."""
    ssh = settings.ssh
    if node.private_key_file is not None:
        key = _read_key_file(settings.project_dir, node.private_key_file)
    else:
        key = reveal(node.private_key) or reveal(ssh.private_key)
        if key is None and ssh.private_key_file is not None:
            key = _read_key_file(settings.project_dir, ssh.private_key_file)
    if key is not None and not key.endswith("\n"):
        key += "\n"  # OpenSSH cannot load a PEM key without its final newline
    return ssh_client.SshParams(
        host=node.host,
        port=node.port or ssh.port,
        user=node.user or ssh.user,
        private_key=key,
        password=reveal(node.password) or reveal(ssh.password),
        host_key=node.host_key or ssh.host_key,
        agent_socket=ssh.agent_socket,
        connect_timeout=ssh.connect_timeout,
        dial_attempts=ssh.dial_attempts,
    )


def connection_args(ssh: ssh_client.SshParams) -> command.remote.ConnectionArgs:
    secret = lambda value: None if value is None else pulumi.Output.secret(value)  # noqa: E731
    return command.remote.ConnectionArgs(
        host=ssh.host,
        port=ssh.port,
        user=ssh.user,
        private_key=secret(ssh.private_key),
        password=secret(ssh.password),
        host_key=ssh.host_key,
        agent_socket_path=ssh.agent_socket,
        per_dial_timeout=ssh.connect_timeout,
        dial_error_limit=ssh.dial_attempts,
    )


class NodeTarget:
    """Registers Command resources that run on one node."""

    def __init__(self, node: Node, settings: Settings):
        self.node = node
        self.local = node.is_local
        self.ssh = None if self.local else ssh_params(node, settings)
        self._connection = None if self.ssh is None else connection_args(self.ssh)

    def _credential(self) -> pulumi.Output[str]:
        assert self.ssh is not None
        return pulumi.Output.secret(self.ssh.private_key or self.ssh.password or "")

    def run(
        self,
        name: str,
        *,
        create: Optional[str],
        delete: Optional[str] = None,
        update: Optional[str] = None,
        stdin: Optional[pulumi.Input[str]] = None,
        logging: str = LOG_ALL,
        triggers: Optional[Sequence[Any]] = None,
        secret_stdout: bool = False,
        opts: pulumi.ResourceOptions,
    ) -> pulumi.CustomResource:
        if secret_stdout:
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["stdout"])
            )
        common = dict(
            create=create,
            delete=delete,
            update=update,
            stdin=stdin,
            triggers=triggers,
            add_previous_output_in_env=False,
            opts=opts,
        )
        if self.local:
            return command.local.Command(
                name, logging=command.local.Logging(logging), interpreter=["/bin/sh", "-c"], **common
            )
        return command.remote.Command(
            name, connection=self._connection, logging=command.remote.Logging(logging), **common
        )

    def upload(self, name: str, files: "Sequence[tuple[Path, str, str]] | pulumi.Output",
               remote_dir: str, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        """Copy bundle files (local path, path under remote_dir, sha256) that the node lacks or has in
        another version. One step per node; it runs again only when a locked sha256 changes. `files` may be
        an Output, for a file built during this `pulumi up` (its sha256 is known only then)."""
        assert self.ssh is not None
        ssh, node = self.ssh, self.node.name
        script = (files.apply(lambda got: ssh_client.upload_script(ssh, node, got, remote_dir))
                  if isinstance(files, pulumi.Output) else ssh_client.upload_script(ssh, node, files, remote_dir))
        return command.local.Command(
            name,
            create=script,
            stdin=self._credential(),
            interpreter=["/bin/sh", "-c"],
            add_previous_output_in_env=False,
            logging=command.local.Logging(LOG_STDERR),
            opts=opts,
        )

    def best_effort(self, name: str, *, delete: str, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
        """A step that runs only on removal and must not block it when the node is gone for good: an
        unreachable node is reported and skipped; any other failure still fails the removal."""
        if self.local:
            return command.local.Command(
                name, create="true", delete=delete, interpreter=["/bin/sh", "-c"],
                add_previous_output_in_env=False, opts=opts,
            )
        assert self.ssh is not None
        return command.local.Command(
            name,
            create="true",
            delete=ssh_client.best_effort_script(self.ssh, self.node.name, delete),
            stdin=self._credential(),
            interpreter=["/bin/sh", "-c"],
            add_previous_output_in_env=False,
            logging=command.local.Logging(LOG_STDERR),
            opts=opts,
        )
