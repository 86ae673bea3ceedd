"""Build the command text that runs one of `hosts/*.sh` on a node.

Pure functions: same inputs, byte-identical text. Values reach the script as `JHUB_*` variables written
into the command text itself, quoted, because sshd's AcceptEnv usually drops a client's environment.
Secrets never appear here: they go through the command's stdin. The script body is inlined after
`hosts/lib.sh`, so nothing has to be installed on the host first, and a changed script re-runs the step.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path
from typing import Iterable, Mapping

HOSTS_DIR = Path(__file__).resolve().parent.parent / "hosts"
_ENV_NAME_RE = re.compile(r"^JHUB_[A-Z0-9_]+$")


@functools.lru_cache(maxsize=None)
def script_text(name: str) -> str:
    path = HOSTS_DIR / f"{name}.sh"
    if not path.is_file():
        raise FileNotFoundError(f"host script {path} does not exist")
    return path.read_text()


def script_body(name: str) -> str:
    """lib.sh then the script, as one bash program (the script skips sourcing lib.sh when loaded)."""
    return script_text("lib") + "\n" + script_text(name)


def lines(values: Iterable[str]) -> str:
    """Multi-value inputs travel as newline-separated lines."""
    return "\n".join(values)


def command(
    name: str,
    env: Mapping[str, str] | None = None,
    *,
    args: Iterable[str] = (),
    timeout_s: int = 1800,
    privileged: bool = True,
) -> str:
    """`<sudo -n unless root> env JHUB_..=.. timeout N bash -c '<lib+script>' jhub-<name> args`."""
    env = dict(env or {})
    for key, value in env.items():
        if not _ENV_NAME_RE.match(key):
            raise ValueError(f"environment name {key!r} must look like JHUB_SOMETHING")
        if not isinstance(value, str):
            raise TypeError(f"{key} must be a string, got {type(value).__name__}")
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in sorted(env.items()))
    run = (
        f"env {assignments} timeout --kill-after=30 {int(timeout_s)} "
        f"bash -c {shlex.quote(script_body(name))} jhub-{name}"
    )
    extra = " ".join(shlex.quote(a) for a in args)
    if extra:
        run += " " + extra
    if not privileged:
        return run
    # `exec` keeps stdin (secrets) flowing to the script; sudo -n fails fast instead of prompting.
    return 'S=; [ "$(id -u)" = 0 ] || S="sudo -n"; exec $S ' + run
