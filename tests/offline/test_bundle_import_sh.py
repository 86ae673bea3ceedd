"""hosts/images.sh against a REAL containerd (Debian's, started by tests/support/containerd.py), importing a
tarball the real bundler (scripts/bundler) wrote from a real distribution registry on 127.0.0.1, with the
JHUB_IMAGES lines the program composes from the lock (components/cluster/host.py `image_lines`).

The only stand-in is `microk8s` itself: a two-line shim that runs this machine's `ctr` against the test
containerd's socket, as `microk8s ctr` runs the snap's ctr against MicroK8s's. Everything ctr answers
(names, digests, labels, errors) is containerd's own.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from components.bundle.locks import load_lock
from components.cluster.host import image_lines
from scripts.bundler.images import fetch_image
from tests.support.containerd import containerd
from tests.support.registry import build_layout, registry

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = "/var/lib/jhub/bundle/images"
PIN = "io.cri-containerd.pinned=pinned"


def bundle_versions(tmp_path, monkeypatch, seeds):
    """For each seed, an images.lock and its tarball, written by the bundler from a registry whose team/app:1.0
    is then an amd64+arm64 image made from that seed: [(bundle dir, lock entry, locked images)]."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "charts.lock").write_text("version: 1\ncharts: []\n")
    bundles = []
    with registry(tmp_path) as running:
        monkeypatch.setenv("JHUB_INSECURE_REGISTRIES", running.host)
        for n, seed in enumerate(seeds):
            out = tmp_path / ("bundle" if n == 0 else f"bundle{n}")
            ref = running.push(build_layout(tmp_path / f"layout{n}", seed=seed), "team/app")
            entry = {"ref": ref, "file": "images/app.tar", "sha256": None,
                     "alsoTagged": ["example.org/team/app:1.0"], "features": ["jupyterhub"]}
            fetch_image(entry, out)
            (out / "images.lock").write_text(yaml.safe_dump({"version": 1, "images": [entry]}, sort_keys=False))
            bundles.append((out, entry, load_lock(out, tmp_path / "charts").images))
    return bundles


@pytest.fixture
def bundled(tmp_path, monkeypatch):
    """An images.lock and its tarball, written by the bundler from a registry holding an amd64+arm64 image."""
    return bundle_versions(tmp_path, monkeypatch, [b"jhub"])[0]


class Node:
    """A temp root (JHUB_ROOT) holding the uploaded tarball, and a `microk8s` shim for the real ctr."""

    def __init__(self, tmp_path: Path, ctr_argv: list[str], tarball: Path):
        self.root, self.bin = tmp_path / "root", tmp_path / "bin"
        self.calls = tmp_path / "ctr-calls"
        self.bin.mkdir()
        (self.root / IMAGE_DIR.lstrip("/")).mkdir(parents=True)
        (self.root / IMAGE_DIR.lstrip("/") / tarball.name).write_bytes(tarball.read_bytes())
        ctr, address = ctr_argv[0], ctr_argv[ctr_argv.index("--address") + 1]
        self.ctr = [ctr, "--address", address, "--namespace", "k8s.io"]
        shim = self.bin / "microk8s"
        shim.write_text(f'#!/bin/sh\n[ "$1" = ctr ] || exit 127\nshift\necho "$*" >>{self.calls}\n'
                        f'exec {ctr} --address {address} "$@"\n')
        shim.chmod(0o755)

    def run(self, lines: list[str], fails: bool = False) -> subprocess.CompletedProcess:
        self.calls.write_text("")
        env = {"PATH": f"{self.bin}:{os.environ['PATH']}", "HOME": str(self.root), "LANG": "C.UTF-8",
               "JHUB_ROOT": str(self.root), "JHUB_IMAGE_DIR": IMAGE_DIR, "JHUB_IMAGES": "\n".join(lines) + "\n"}
        done = subprocess.run(["timeout", "300", "bash", str(ROOT / "hosts" / "images.sh")], env=env,
                              capture_output=True, text=True)
        assert (done.returncode != 0) == fails, done.stderr
        return done

    def ctr_calls(self) -> list[str]:
        return self.calls.read_text().splitlines()

    def images(self) -> dict[str, tuple[str, str]]:
        """name -> (digest, labels) as the real `ctr images ls` shows them."""
        listed = subprocess.run(self.ctr + ["images", "ls"], capture_output=True, text=True, check=True).stdout
        return {row[0]: (row[2], row[-1]) for row in map(str.split, listed.splitlines()[1:]) if len(row) >= 3}


def test_images_sh_imports_by_the_locks_digest_into_a_real_containerd_tags_and_pins_then_changes_nothing(
        bundled, tmp_path):
    out, entry, locked = bundled
    lines = image_lines(locked)
    digest = entry["digest"]
    assert lines == [f"app.tar {entry['sha256']} {entry['ref']},example.org/team/app:1.0 {digest}"]
    repository = entry["ref"].rsplit(":", 1)[0]
    with containerd() as ctr:
        node = Node(tmp_path, ctr, out / entry["file"])
        first = node.run(lines)
        assert [c for c in node.ctr_calls() if " import " in f" {c} "] == [
            f"--namespace k8s.io images import --platform linux/amd64 {node.root}{IMAGE_DIR}/app.tar"]
        images = node.images()
        want = {entry["ref"], "example.org/team/app:1.0", f"{repository}@{digest}", f"example.org/team/app@{digest}"}
        assert set(images) == want
        assert all(images[name] == (digest, PIN) for name in want), images
        assert "app.tar: imported" in first.stderr

        second = node.run(lines)
        assert [c for c in node.ctr_calls() if " ls" not in c] == [], "a second run only lists"
        assert node.images() == images
        assert f"app.tar: already imported (digest {digest[:19]}), skipping" in second.stderr

        # the record of the last import is lost: containerd shows the names at the digest, so no import
        (node.root / "var/lib/jhub/images/app.tar.sha256").unlink()
        node.run(lines)
        assert not [c for c in node.ctr_calls() if " import " in f" {c} "]

        # the image is deleted from containerd (by hand, or a reset): imported, tagged and pinned again
        subprocess.run(node.ctr + ["images", "rm", entry["ref"], f"{repository}@{digest}"], check=True,
                       capture_output=True)
        node.run(lines)
        assert node.images() == images


def test_a_lock_digest_the_tarball_does_not_hold_is_a_clear_error_from_the_real_import(bundled, tmp_path):
    out, entry, locked = bundled
    wrong = "sha256:" + "e" * 64
    lines = [line.replace(entry["digest"], wrong) for line in image_lines(locked)]
    with containerd() as ctr:
        node = Node(tmp_path, ctr, out / entry["file"])
        failed = node.run(lines, fails=True)
        assert (f"but containerd has {entry['ref']} at {entry['digest']} while the lock says {wrong}; "
                "the tarball is not the image the lock names") in failed.stderr
        assert not [c for c in node.ctr_calls() if " label " in f" {c} " or " tag " in f" {c} "]
        assert (f"the import was undone; removed what it added: {entry['ref']}, example.org/team/app:1.0"
                in failed.stderr)
        assert node.images() == {}, "no name the import gave stays, so no image the lock does not name"
        assert not (node.root / "var/lib/jhub/images/app.tar.sha256").exists()


def test_a_wrong_tarball_over_a_pinned_image_is_undone_in_a_real_containerd_and_the_old_one_is_back(
        tmp_path, monkeypatch):
    """containerd's import moves a name it has to the tarball's manifest and keeps the name's labels, the pin
    among them. An upgrade whose tarball is not the lock's image must leave the old image under its names."""
    (old_out, old_entry, old_locked), (new_out, new_entry, new_locked) = bundle_versions(
        tmp_path, monkeypatch, [b"jhub", b"jhub, the next build"])
    old_digest, new_digest = old_entry["digest"], new_entry["digest"]
    assert old_digest != new_digest
    wrong = "sha256:" + "e" * 64
    bad = [line.replace(new_digest, wrong) for line in image_lines(new_locked)]
    repository = old_entry["ref"].rsplit(":", 1)[0]
    with containerd() as ctr:
        node = Node(tmp_path, ctr, old_out / old_entry["file"])
        node.run(image_lines(old_locked))
        before = node.images()
        assert before[old_entry["ref"]] == (old_digest, PIN)

        (node.root / IMAGE_DIR.lstrip("/") / "app.tar").write_bytes((new_out / new_entry["file"]).read_bytes())
        failed = node.run(bad, fails=True)
        assert f"containerd has {old_entry['ref']} at {new_digest} while the lock says {wrong}" in failed.stderr
        assert ("the import was undone; put back at the digest they had: "
                f"{old_entry['ref']}, example.org/team/app:1.0") in failed.stderr
        assert node.images() == before, "the old image is back under its names, pinned; the new one has no name"

        # no <repository>@<digest> keeps the old image: the script tags one before the import, and removes it
        subprocess.run(node.ctr + ["images", "rm", f"{repository}@{old_digest}",
                                   f"example.org/team/app@{old_digest}"], check=True, capture_output=True)
        before = node.images()
        node.run(bad, fails=True)
        assert [c.split()[3:5] for c in node.ctr_calls() if " ls" not in c] == [
            ["tag", old_entry["ref"]], ["import", "--platform"], ["tag", "--force"], ["tag", "--force"],
            ["rm", f"{repository}@{old_digest}"]]
        assert node.images() == before

        # the right lock for the new tarball: imported, then a second run changes nothing
        node.run(image_lines(new_locked))
        after = node.images()
        assert after[old_entry["ref"]] == after[f"{repository}@{new_digest}"] == (new_digest, PIN)
        node.run(image_lines(new_locked))
        assert [c for c in node.ctr_calls() if " ls" not in c] == [] and node.images() == after
