"""Harness for the host-script tests (used through the `host` fixture in conftest.py).

Each test gets a temporary root (JHUB_ROOT) and the fake `snap` and `microk8s` from fakes/ first on
PATH; everything else (bash, coreutils, awk, ip, sha256sum) is the real thing. The fakes record every
call with its argv and environment, so tests assert the calls a script made.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOSTS = REPO / "hosts"
FAKES = Path(__file__).resolve().parent / "fakes"


@dataclass
class Call:
    cmd: str
    argv: list[str]
    env: dict[str, str]

    @property
    def line(self) -> str:
        return " ".join([self.cmd, *self.argv])


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    calls: list[Call] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [c.line for c in self.calls]

    def has(self, prefix: str) -> bool:
        return any(c.line.startswith(prefix) for c in self.calls)

    def count(self, prefix: str) -> int:
        return sum(1 for c in self.calls if c.line.startswith(prefix))


class Host:
    """One fake host: a temporary root plus the fakes' state."""

    def __init__(self, tmp: Path):
        self.root = tmp / "root"
        self.fake = tmp / "fake"
        self.root.mkdir()
        self.fake.mkdir()
        self.component_style = False

    # -- paths ---------------------------------------------------------------------------------
    def p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def write(self, path: str, text: str, mode: int = 0o644) -> Path:
        f = self.p(path)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
        f.chmod(mode)
        return f

    def read(self, path: str) -> str:
        return self.p(path).read_text()

    @property
    def data(self) -> Path:
        return self.p("/var/snap/microk8s/current")

    # -- the fakes' state ----------------------------------------------------------------------
    def state(self, name: str) -> dict:
        f = self.fake / f"{name}.json"
        return json.loads(f.read_text()) if f.exists() else {}

    def set_state(self, name: str, **values) -> None:
        data = self.state(name)
        data.update(values)
        (self.fake / f"{name}.json").write_text(json.dumps(data))

    def fake_cmd(self, cmd: str, *args: str) -> None:
        """Run a fake directly to set a scene (its call is not kept in the log)."""
        log = self.fake / "calls.jsonl"
        before = log.read_text() if log.exists() else ""
        subprocess.run([str(FAKES / cmd), *args], env=self.env({}), check=True, capture_output=True)
        log.write_text(before)

    def install_microk8s(self, rev: str = "7229") -> None:
        snaps = self.p("/tmp-snaps")
        snaps.mkdir(exist_ok=True)
        (snaps / f"microk8s_{rev}.snap").write_bytes(b"snap")
        (snaps / f"microk8s_{rev}.assert").write_text(f"snap-name: microk8s\nsnap-revision: {rev}\n")
        self.fake_cmd("snap", "ack", str(snaps / f"microk8s_{rev}.assert"))
        self.fake_cmd("snap", "install", str(snaps / f"microk8s_{rev}.snap"), "--classic")

    def add_node(self, name: str, labels: dict | None = None, **extra) -> None:
        nodes = self.state("microk8s").get("nodes", {})
        nodes[name] = {"labels": {"kubernetes.io/hostname": name, **(labels or {})}, **extra}
        self.set_state("microk8s", nodes=nodes)

    # -- running scripts -----------------------------------------------------------------------
    def env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "PATH": f"{FAKES}:{os.environ['PATH']}",
            "HOME": str(self.fake),
            "LANG": "C.UTF-8",
            "JHUB_ROOT": str(self.root),
            "FAKE_STATE": str(self.fake),
            "JHUB_POLL_INTERVAL": "0.1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update(extra)
        return env

    def calls(self) -> list[Call]:
        log = self.fake / "calls.jsonl"
        if not log.exists():
            return []
        return [Call(e["cmd"], e["argv"], e["env"]) for e in map(json.loads, log.read_text().splitlines())]

    def run(self, script: str, *args: str, env: dict[str, str] | None = None, stdin: str = "",
            fails: bool = False, live: bool = False) -> Result:
        """Run hosts/<script>.sh; return its output and the fake calls it made. It must exit 0, or,
        with fails=True, non-zero."""
        before = len(self.calls())
        full_env = self.env(env or {})
        if live:
            del full_env["JHUB_ROOT"]
        if self.component_style:
            # exactly how the Pulumi components run a script
            body = (HOSTS / "lib.sh").read_text() + "\n" + (HOSTS / f"{script}.sh").read_text()
            cmd = ["timeout", "120", "bash", "-c", body, f"jhub-{script}", *args]
        else:
            cmd = ["timeout", "120", "bash", str(HOSTS / f"{script}.sh"), *args]
        proc = subprocess.run(cmd, env=full_env, input=stdin, capture_output=True, text=True, cwd=self.fake)
        res = Result(proc.returncode, proc.stdout, proc.stderr, self.calls()[before:])
        if not fails and proc.returncode != 0:
            raise AssertionError(
                f"{script} {' '.join(args)} exited {proc.returncode}\n--- stderr\n{proc.stderr}\n--- calls\n"
                + "\n".join(res.lines())
            )
        if fails and proc.returncode == 0:
            raise AssertionError(f"{script} {' '.join(args)} was expected to fail\n--- stderr\n{proc.stderr}")
        return res

    def snapshot(self) -> dict[str, tuple[str, int]]:
        """Every file and link under the root with its content hash and mode."""
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in sorted(dirnames + filenames):
                f = Path(dirpath) / name
                rel = str(f.relative_to(self.root))
                if f.is_symlink():
                    out[rel] = ("link:" + os.readlink(f), 0)
                elif f.is_file():
                    out[rel] = (hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_mode)
                elif f.is_dir():
                    out[rel] = ("dir", f.stat().st_mode)
        return out


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")
