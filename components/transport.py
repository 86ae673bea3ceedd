"""How commands reach a node: SSH through pulumi-command, or the local shell for `host: local`.

`NodeTarget` makes every Command of one node the same way: one connection object (secrets wrapped as
Pulumi secrets), no previous output leaking into the next run's environment, and log output chosen per
step (steps that print secrets log nothing).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import pulumi
import pulumi_command as command

from .settings import Settings
from .settings.base import reveal
from .settings.cluster import Node

LOG_ALL = "stdoutAndStderr"
LOG_STDERR = "stderr"
LOG_NONE = "none"


def _read_key_file(project_dir: Path, path: str) -> str:
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = project_dir / resolved
    return resolved.read_text()


@dataclass(frozen=True)
class SshParams:
    """The effective connection of a node: per-node fields override `jhub:ssh`."""

    host: str
    port: int
    user: str
    private_key: Optional[str]
    password: Optional[str]
    host_key: Optional[str]
    agent_socket: Optional[str]
    connect_timeout: int
    dial_attempts: int

    @classmethod
    def of(cls, node: Node, settings: Settings) -> "SshParams":
        ssh = settings.ssh
        key = reveal(node.private_key) or reveal(ssh.private_key) if node.private_key_file is None else None
        key_file = node.private_key_file or (ssh.private_key_file if key is None else None)
        if key is None and key_file is not None:
            key = _read_key_file(settings.project_dir, key_file)
        return cls(
            host=node.address if node.is_local else node.host,
            port=node.port or ssh.port,
            user=node.user or ssh.user,
            private_key=key,
            password=reveal(node.password) or reveal(ssh.password),
            host_key=node.host_key or ssh.host_key,
            agent_socket=ssh.agent_socket,
            connect_timeout=ssh.connect_timeout,
            dial_attempts=ssh.dial_attempts,
        )

    def connection(self) -> command.remote.ConnectionArgs:
        secret = lambda value: None if value is None else pulumi.Output.secret(value)  # noqa: E731
        return command.remote.ConnectionArgs(
            host=self.host,
            port=self.port,
            user=self.user,
            private_key=secret(self.private_key),
            password=secret(self.password),
            host_key=self.host_key,
            agent_socket_path=self.agent_socket,
            per_dial_timeout=self.connect_timeout,
            dial_error_limit=self.dial_attempts,
        )


class NodeTarget:
    """Registers Command resources that run on one node."""

    def __init__(self, node: Node, settings: Settings):
        self.node = node
        self.local = node.is_local
        self.ssh = None if self.local else SshParams.of(node, settings)
        self._connection = None if self.ssh is None else self.ssh.connection()

    def run(
        self,
        name: str,
        *,
        create: Optional[str],
        delete: Optional[str] = None,
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

    def upload(self, name: str, source: Path, remote_path: str, sha256: str, opts: pulumi.ResourceOptions):
        """Copy one bundle file to the node; re-copied only when its locked sha256 changes."""
        return command.remote.CopyToRemote(
            name,
            connection=self._connection,
            source=pulumi.FileAsset(str(source)),
            remote_path=remote_path,
            triggers=[sha256],
            opts=opts,
        )

    def best_effort(
        self, name: str, *, delete: str, opts: pulumi.ResourceOptions
    ) -> pulumi.CustomResource:
        """A step that runs only on removal and must not block it when the node is gone for good.

        Runs from the admin machine with the OpenSSH client: an unreachable node (ssh exit 255) is
        reported and skipped; any other failure still fails the removal.
        """
        if self.local:
            return command.local.Command(
                name, create="true", delete=delete, interpreter=["/bin/sh", "-c"],
                add_previous_output_in_env=False, opts=opts,
            )
        assert self.ssh is not None
        return command.local.Command(
            name,
            create="true",
            delete=best_effort_ssh(self.ssh, self.node.name, delete),
            stdin=pulumi.Output.secret(self.ssh.private_key or self.ssh.password or ""),
            interpreter=["/bin/sh", "-c"],
            add_previous_output_in_env=False,
            logging=command.local.Logging(LOG_STDERR),
            opts=opts,
        )


def best_effort_ssh(ssh: SshParams, node_name: str, remote_command: str) -> str:
    """Shell text that runs `remote_command` over ssh; the key or password arrives on stdin."""
    known = f"[{ssh.host}]:{ssh.port} {ssh.host_key}" if ssh.host_key else ""
    checking = "-o StrictHostKeyChecking=yes" if ssh.host_key else "-o StrictHostKeyChecking=no"
    if ssh.private_key:
        auth = '-o BatchMode=yes -o IdentitiesOnly=yes -i "$d/secret"'
        askpass = ""
    elif ssh.password:
        auth = "-o PreferredAuthentications=password,keyboard-interactive -o NumberOfPasswordPrompts=1"
        askpass = (
            'printf \'#!/bin/sh\\ncat "%s"\\n\' "$d/secret" > "$d/askpass"; chmod 700 "$d/askpass"; '
            'export SSH_ASKPASS="$d/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=none; '
        )
    else:
        auth = "-o BatchMode=yes"
        askpass = ""
    target = shlex.quote(f"{ssh.user}@{ssh.host}")
    return (
        "umask 077; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; cat > \"$d/secret\"; "
        f"printf '%s\\n' {shlex.quote(known)} > \"$d/known_hosts\"; {askpass}"
        f"ssh -p {ssh.port} {auth} {checking} -o UserKnownHostsFile=\"$d/known_hosts\" "
        f"-o ConnectTimeout={ssh.connect_timeout} {target} {shlex.quote(remote_command)} </dev/null; rc=$?; "
        f"if [ $rc -eq 255 ]; then echo \"jhub: node {node_name} is unreachable; skipped this step on it\" >&2; "
        "exit 0; fi; exit $rc"
    )
