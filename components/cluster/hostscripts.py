"""Build the command text that runs one of `hosts/*.sh` on a node.

Pure functions: same inputs, byte-identical text. The unit is a script: each script travels with `lib.sh`
(which every script sources) into a folder named by the sha256 of the two, `/var/lib/jhub/scripts/<unit>/`,
on every node, local ones too. A command names its own script's folder, so a change to one script re-runs
only the steps that run it (a change to lib.sh re-runs all), a failing step shows a short command, not the
whole script, and no stored command (a delete included) names the checkout's path. Values reach the script
as `JHUB_*` variables written into the command text itself, quoted, because sshd's AcceptEnv usually drops
a client's environment. Secrets never appear here: they go through the command's stdin.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import re
import shlex
import tarfile
from pathlib import Path
from typing import Iterable, Mapping

HOSTS_DIR = Path(__file__).resolve().parents[2] / "hosts"
REMOTE_SCRIPTS = "/var/lib/jhub/scripts"
LIBRARY = "lib.sh"
_ENV_NAME_RE = re.compile(r"^JHUB_[A-Z0-9_]+$")
_PRIVILEGED = 'S=; [ "$(id -u)" = 0 ] || S="sudo -n"; '


@functools.lru_cache(maxsize=None)
def _scripts() -> tuple[tuple[str, bytes], ...]:
    return tuple((path.name, path.read_bytes()) for path in sorted(HOSTS_DIR.glob("*.sh")))


def clear_caches() -> None:
    """For tests that edit a copy of hosts/."""
    for cached in (_scripts, unit_sha, scripts_archive):
        cached.cache_clear()


@functools.lru_cache(maxsize=None)
def unit_sha(name: str) -> str:
    """The hash of what `<name>.sh` runs: the script and lib.sh."""
    files = dict(_scripts())
    if f"{name}.sh" not in files or name == LIBRARY[:-3]:
        raise FileNotFoundError(f"host script {HOSTS_DIR / (name + '.sh')} does not exist")
    digest = hashlib.sha256()
    for member in sorted({f"{name}.sh", LIBRARY}):
        digest.update(member.encode() + b"\0" + hashlib.sha256(files[member]).digest())
    return digest.hexdigest()


def script_dir(name: str, *, base: str = REMOTE_SCRIPTS) -> str:
    return f"{base}/{unit_sha(name)[:16]}"


def _units() -> list[tuple[str, bytes]]:
    """(path in the archive, content): every script beside its own copy of lib.sh."""
    files = dict(_scripts())
    members = []
    for script in files:
        if script == LIBRARY:
            continue
        folder = unit_sha(script[:-3])[:16]
        members += [(f"{folder}/{script}", files[script]), (f"{folder}/{LIBRARY}", files[LIBRARY])]
    return members


def archive(files: Iterable[tuple[str, bytes]]) -> str:
    """Files as a base64 ustar archive with fixed owners, modes and times, entries sorted: the same bytes
    on every machine (no compressor, whose output varies between zlib builds)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        folders = sorted({name.rsplit("/", 1)[0] for name, _ in files if "/" in name})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            tar.addfile(info)
        for name, content in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), 0o644
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            tar.addfile(info, io.BytesIO(content))
    return base64.b64encode(raw.getvalue()).decode() + "\n"


@functools.lru_cache(maxsize=None)
def scripts_archive() -> str:
    return archive(_units())


def install_command(*, base: str = REMOTE_SCRIPTS) -> str:
    """Unpack the archive (stdin) into the node's scripts folder: each unit folder that is not complete
    yet; root-owned, read-only to others. Units already in place are left alone."""
    body = (
        f"set -e; b={shlex.quote(base)}; mkdir -p \"$b\"; t=\"$(mktemp -d \"$b/.incoming-XXXXXX\")\"; "
        'trap \'rm -rf "$t"\' EXIT; base64 -d | tar -xf - -C "$t" --no-same-owner; n=0; '
        'for d in "$t"/*/; do u="$(basename "$d")"; '
        'if [ -f "$b/$u/.complete" ]; then continue; fi; '
        'chmod 755 "$d"; touch "$d/.complete"; rm -rf "${b:?}/$u"; mv "$d" "$b/$u"; n=$((n + 1)); done; '
        'if [ "$n" = 0 ]; then echo "jhub[scripts]: host scripts already in place in $b" >&2; '
        'else echo "jhub[scripts]: installed $n host script folder(s) in $b" >&2; fi'
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
) -> str:
    """`<sudo -n unless root> env JHUB_..=.. timeout N bash /var/lib/jhub/scripts/<unit>/<name>.sh args`."""
    folder = script_dir(name)
    env = dict(env or {})
    for key, value in env.items():
        if not _ENV_NAME_RE.match(key):
            raise ValueError(f"environment name {key!r} must look like JHUB_SOMETHING")
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {type(value).__name__}")
    path = f"{folder}/{name}.sh"
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
