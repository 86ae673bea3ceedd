"""Build the command text that runs one of `hosts/*.sh` on a node.

Pure functions: same inputs, byte-identical text. The scripts are shipped once per node into a folder named
by the sha256 of the whole set (`/var/lib/jhub/scripts/<sha>/`); a local node runs them from this
repository. Either way the sha is in every command, so changed scripts re-run the steps, and a failing step
shows a short command, not the whole script. Values reach the script as `JHUB_*` variables written into the
command text itself, quoted, because sshd's AcceptEnv usually drops a client's environment. Secrets never
appear here: they go through the command's stdin.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import io
import re
import shlex
import tarfile
from pathlib import Path
from typing import Iterable, Mapping

HOSTS_DIR = Path(__file__).resolve().parents[2] / "hosts"
REMOTE_SCRIPTS = "/var/lib/jhub/scripts"
_ENV_NAME_RE = re.compile(r"^JHUB_[A-Z0-9_]+$")
_PRIVILEGED = 'S=; [ "$(id -u)" = 0 ] || S="sudo -n"; '


@functools.lru_cache(maxsize=None)
def _scripts() -> tuple[tuple[str, bytes], ...]:
    return tuple((path.name, path.read_bytes()) for path in sorted(HOSTS_DIR.glob("*.sh")))


@functools.lru_cache(maxsize=None)
def scripts_sha() -> str:
    digest = hashlib.sha256()
    for name, content in _scripts():
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


@functools.lru_cache(maxsize=None)
def scripts_archive() -> str:
    """The scripts as a base64 tar.gz with fixed owners, modes and times: identical bytes every run."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in _scripts():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uid, info.gid = len(content), 0o644, 0, 0, 0
            tar.addfile(info, io.BytesIO(content))
    packed = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    return base64.b64encode(packed).decode() + "\n"


def script_dir(local: bool) -> str:
    return str(HOSTS_DIR) if local else f"{REMOTE_SCRIPTS}/{scripts_sha()[:16]}"


def install_command() -> str:
    """Unpack the archive (stdin) into the node's scripts folder, once; root-owned, read-only to others."""
    folder = script_dir(local=False)
    body = (
        f"set -e; d={folder}; "
        'if [ -f "$d/.complete" ]; then echo "jhub[scripts]: host scripts $d already in place" >&2; exit 0; fi; '
        'rm -rf "$d.tmp"; mkdir -p "$d.tmp"; base64 -d | tar -xzf - -C "$d.tmp" --no-same-owner; '
        'chmod 755 "$d.tmp"; touch "$d.tmp/.complete"; rm -rf "$d"; mv "$d.tmp" "$d"; '
        'echo "jhub[scripts]: installed host scripts in $d" >&2'
    )
    return _PRIVILEGED + f"umask 022; exec $S sh -c {shlex.quote(body)}"


def lines(values: Iterable[str]) -> str:
    """Multi-value inputs travel as newline-separated lines."""
    return "\n".join(values)


def command(
    name: str,
    env: Mapping[str, str] | None = None,
    *,
    args: Iterable[str] = (),
    timeout_s: int = 1800,
    local: bool = False,
) -> str:
    """`<sudo -n unless root> env JHUB_..=.. timeout N bash <folder>/<name>.sh args`."""
    if not any(script == f"{name}.sh" for script, _ in _scripts()):
        raise FileNotFoundError(f"host script {HOSTS_DIR / (name + '.sh')} does not exist")
    env = dict(env or {})
    for key, value in env.items():
        if not _ENV_NAME_RE.match(key):
            raise ValueError(f"environment name {key!r} must look like JHUB_SOMETHING")
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {type(value).__name__}")
    env["JHUB_SCRIPTS"] = scripts_sha()[:16]
    path = f"{script_dir(local)}/{name}.sh"
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(env.items()))
    run = f"env {assignments} timeout --kill-after=30 {int(timeout_s)} bash {shlex.quote(path)}"
    extra = " ".join(shlex.quote(a) for a in args)
    if extra:
        run += " " + extra
    missing = (
        f"[ -f {shlex.quote(path)} ] || {{ echo \"jhub: {path} is missing on this host; "
        f"run pulumi up again (or pulumi up --replace the node's -scripts step)\" >&2; exit 1; }}; "
    )
    # `exec` keeps stdin (secrets) flowing to the script; sudo -n fails fast instead of prompting.
    return missing + _PRIVILEGED + "exec $S " + run
