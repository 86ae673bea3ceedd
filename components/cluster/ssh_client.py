"""Shell text for the steps that run the OpenSSH client on the admin machine.

The private key or password arrives on the command's stdin (a Pulumi secret) and lives only in a 0600
temporary folder while the step runs. The host key, when pinned, is checked strictly. Pure functions:
the same parameters give the same text.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence


@dataclass(frozen=True)
class SshParams:
    host: str
    port: int
    user: str
    private_key: Optional[str]
    password: Optional[str]
    host_key: Optional[str]
    agent_socket: Optional[str]
    connect_timeout: int
    dial_attempts: int


def _known_hosts_line(ssh: SshParams) -> str:
    # OpenSSH looks up a bare host on port 22 and "[host]:port" on any other port.
    name = ssh.host if ssh.port == 22 else f"[{ssh.host}]:{ssh.port}"
    return f"{name} {ssh.host_key}" if ssh.host_key else ""


def _prologue(ssh: SshParams) -> str:
    """Secret to a 0600 file, known_hosts, askpass for passwords; the ssh/scp options become "$@"."""
    options = [
        f"-o Port={ssh.port}",
        f"-o User={shlex.quote(ssh.user)}",
        f"-o ConnectTimeout={ssh.connect_timeout}",
        '-o UserKnownHostsFile="$d/known_hosts"',
        "-o StrictHostKeyChecking=yes" if ssh.host_key else "-o StrictHostKeyChecking=no",
        "-o LogLevel=ERROR",
    ]
    askpass = ""
    if ssh.private_key:
        options += ["-o BatchMode=yes", "-o IdentitiesOnly=yes", '-o IdentityFile="$d/secret"']
    elif ssh.password:
        options += ["-o PreferredAuthentications=password,keyboard-interactive",
                    "-o NumberOfPasswordPrompts=1"]
        askpass = (
            'printf \'#!/bin/sh\\ncat "%s"\\n\' "$d/secret" > "$d/askpass"; chmod 700 "$d/askpass"; '
            'SSH_ASKPASS="$d/askpass"; SSH_ASKPASS_REQUIRE=force; DISPLAY=none; '
            "export SSH_ASKPASS SSH_ASKPASS_REQUIRE DISPLAY; "
        )
    else:
        options.append("-o BatchMode=yes")
    if ssh.agent_socket:
        options.append(f"-o IdentityAgent={shlex.quote(ssh.agent_socket)}")
    return (
        "umask 077; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; cat > \"$d/secret\"; "
        f"printf '%s\\n' {shlex.quote(_known_hosts_line(ssh))} > \"$d/known_hosts\"; {askpass}"
        f"set -- {' '.join(options)}; "
    )


def _reachable(ssh: SshParams) -> str:
    """Exit status 0 when the node's SSH port accepts a TCP connection (no login attempted)."""
    probe = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({ssh.host!r}, {ssh.port}), timeout={ssh.connect_timeout}).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    return f"python3 -c {shlex.quote(probe)}"


def best_effort_script(ssh: SshParams, node_name: str, remote_command: str) -> str:
    """Run `remote_command` on the node if it is reachable; skip it (exit 0) if not."""
    return (
        f"if ! {_reachable(ssh)}; then "
        f"echo \"jhub: node {node_name} ({ssh.host}:{ssh.port}) is unreachable; skipped this step on it\" >&2; "
        "exit 0; fi; "
        + _prologue(ssh)
        + f'ssh "$@" {shlex.quote(ssh.host)} {shlex.quote(remote_command)} </dev/null'
    )


def upload_script(ssh: SshParams, node_name: str, files: Sequence[tuple[Path, str, str]], remote_dir: str) -> str:
    """Copy the files the node lacks (checked by sha256 on the node), each through a `.part` file."""
    ordered = sorted(files, key=lambda f: f[1])
    for local, rel, _ in ordered:
        if any(c in f"{local}{rel}{remote_dir}" for c in "\t\n'"):
            raise ValueError(f"bundle path {local} has a tab, newline or single quote")
    manifest = "\n".join(f"{sha}\t{rel}\t{local}" for local, rel, sha in ordered)
    rels = " ".join(shlex.quote(rel) for _, rel, _ in ordered)
    folders = sorted({rel.rsplit("/", 1)[0] for _, rel, _ in ordered if "/" in rel})
    mkdirs = " ".join(shlex.quote(f"{remote_dir}/{folder}") for folder in folders) or shlex.quote(remote_dir)
    host = shlex.quote(ssh.host)
    return (
        "set -eu; " + _prologue(ssh)
        + f"ssh \"$@\" {host} {shlex.quote(f'mkdir -p {mkdirs}')} </dev/null; "
        + f"ssh \"$@\" {host} "
        + shlex.quote(f"cd {shlex.quote(remote_dir)} && sha256sum -- {rels} 2>/dev/null || true")
        + ' </dev/null > "$d/have"; '
        + "tab=$(printf '\\t'); "
        + 'while IFS="$tab" read -r sum rel local; do '
        + 'if grep -qxF "$sum  $rel" "$d/have"; then '
        + f'echo "jhub[upload]: {node_name}: $rel is already there" >&2; continue; fi; '
        + f'scp -q "$@" "$local" "{ssh.host}:{remote_dir}/$rel.part" </dev/null; '
        + f'ssh "$@" {host} "mv -f \'{remote_dir}/$rel.part\' \'{remote_dir}/$rel\'" </dev/null; '
        + f'echo "jhub[upload]: {node_name}: copied $rel" >&2; '
        + f"done <<'JHUB_MANIFEST'\n{manifest}\nJHUB_MANIFEST\n"
    )
