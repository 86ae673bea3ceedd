"""Harness for the host-script tests (used through the `host` fixture in conftest.py).

Each test gets a temporary root (JHUB_ROOT) and the fake `snap` and `microk8s` from fakes/ first on
PATH; everything else (bash, coreutils, awk, ip, sha256sum) is the real thing. The fakes record every
call with its argv and environment, so tests assert the calls a script made.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))
from _fake import NODE_IMAGES  # noqa: E402

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
        # True: run `bash -c '<lib.sh>\n<script>' jhub-<script>` instead of `bash <folder>/<script>.sh`
        self.component_style = False
        # the host name `uname -n` answers (fakes/uname); None: this machine's own
        self.nodename: str | None = None

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

    def install_microk8s(self, rev: str = "7229", running: bool = True) -> None:
        """MicroK8s installed outside jhub. running: its containerd already has the Calico and pause
        images (pulled or imported earlier), so it is Ready."""
        snaps = self.p("/tmp-snaps")
        snaps.mkdir(exist_ok=True)
        (snaps / f"microk8s_{rev}.snap").write_bytes(b"snap")
        (snaps / f"microk8s_{rev}.assert").write_text(f"snap-name: microk8s\nsnap-revision: {rev}\n")
        self.fake_cmd("snap", "ack", str(snaps / f"microk8s_{rev}.assert"))
        self.fake_cmd("snap", "install", str(snaps / f"microk8s_{rev}.snap"), "--classic")
        if running:
            self.seed_node_images()

    def seed_node_images(self) -> None:
        images = self.state("microk8s").get("images", {})
        for ref in NODE_IMAGES:
            images[ref] = {"io.cri-containerd.image": "managed"}
        self.set_state("microk8s", images=images)

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
        if self.nodename is not None:
            env["FAKE_NODENAME"] = self.nodename
        env.update(extra)
        return env

    def calls(self) -> list[Call]:
        log = self.fake / "calls.jsonl"
        if not log.exists():
            return []
        return [Call(e["cmd"], e["argv"], e["env"]) for e in map(json.loads, log.read_text().splitlines())]

    def run(self, script: str, *args: str, env: dict[str, str] | None = None, stdin: str = "",
            fails: bool = False, live: bool = False, script_dir: Path | None = None,
            netns: str | None = None) -> Result:
        """Run hosts/<script>.sh; return its output and the fake calls it made. It must exit 0, or,
        with fails=True, non-zero.

        script_dir: run the script from this folder instead of hosts/ (as the components run the
        copy they uploaded to /var/lib/jhub/scripts/<sha>/). netns: bash commands that set up a
        fresh network namespace (real `ip`, veth links) in which the script then runs."""
        before = len(self.calls())
        full_env = self.env(env or {})
        if live:
            del full_env["JHUB_ROOT"]
        if self.component_style:
            # lib.sh prepended to the script, as `bash -c` (how the components ran scripts at first)
            body = (HOSTS / "lib.sh").read_text() + "\n" + (HOSTS / f"{script}.sh").read_text()
            cmd = ["timeout", "120", "bash", "-c", body, f"jhub-{script}", *args]
        else:
            cmd = ["timeout", "120", "bash", str((script_dir or HOSTS) / f"{script}.sh"), *args]
        if netns is not None:
            cmd = ["unshare", "-n", "bash", "-c", f"set -e\n{netns}\nexec \"$@\"", "netns", *cmd]
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


def image_tarball(host: Host, path: str, refs: list[str], payload: bytes = b"layer",
                  platforms: tuple[str, ...] = ()) -> str:
    """A `docker save`-style tarball with refs at path under the host's root; returns its sha256.
    platforms: an index.json naming these platforms (the first one's blob present, the others' not, like
    a save under Docker's containerd image store)."""
    buf = io.BytesIO()
    members = [("manifest.json", json.dumps([{"RepoTags": refs, "Layers": ["l.tar"]}]).encode()), ("l.tar", payload)]
    if platforms:
        manifests = []
        for n, platform in enumerate(platforms):
            os_name, arch = platform.split("/")
            digest = hashlib.sha256(f"{platform}-{n}".encode()).hexdigest()
            manifests.append({"digest": f"sha256:{digest}", "platform": {"os": os_name, "architecture": arch}})
            if n == 0:
                members.append((f"blobs/sha256/{digest}", b"{}"))
        members.append(("index.json", json.dumps({"manifests": manifests}).encode()))
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for fname, data in members:
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    f = host.p(path)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def oci_tarball(host: Host, path: str, refs: list[str], payload: bytes = b"layer") -> tuple[str, str]:
    """An image tarball as scripts/bundle.py writes it (its own writer: an OCI layout, index.json naming
    each ref by annotation), at path under the host's root; returns (its sha256, the manifest digest)."""
    sys.path.insert(0, str(REPO))
    from scripts.bundler.ociarchive import write_archive

    blobs_dir = host.fake / "blobs"
    blobs_dir.mkdir(exist_ok=True)

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (blobs_dir / digest.split(":")[1]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    layer = dict(blob(payload), mediaType="application/vnd.oci.image.layer.v1.tar")
    config = dict(blob(json.dumps({"architecture": "amd64", "os": "linux",
                                   "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode()),
                  mediaType="application/vnd.oci.image.config.v1+json")
    media = "application/vnd.oci.image.manifest.v1+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": media, "config": config, "layers": [layer]}).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    target = host.p(path)
    write_archive(target, names=refs, manifest=manifest, media_type=media, digest=digest,
                  blobs={d["digest"]: blobs_dir / d["digest"].split(":")[1] for d in (layer, config)})
    return hashlib.sha256(target.read_bytes()).hexdigest(), digest


def copy_scripts(parent: Path) -> Path:
    """hosts/*.sh copied to parent/<sha256 of the set>/, as the components upload them to a node."""
    files = sorted(HOSTS.glob("*.sh"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    folder = parent / digest.hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f.name).write_bytes(f.read_bytes())
    return folder


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def netns_available() -> str | None:
    """None when this machine can give a test its own network namespace with veth links (root,
    unshare -n, the veth driver); else why not."""
    probe = subprocess.run(["unshare", "-n", "ip", "link", "add", "p0", "type", "veth", "peer", "name", "p1"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"needs root and network namespaces with veth links (unshare -n ip link add ... type veth): {probe.stderr.strip()}"
    return None
