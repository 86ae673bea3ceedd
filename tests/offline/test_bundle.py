"""scripts/bundle.py fills the locks on a connected machine with Python alone; the preflight then accepts
the bundle, a second run downloads nothing, and `--check` names what is missing or wrong.

The images come from a real distribution registry on 127.0.0.1 used as a mirror (`--mirror`: copies under
`<prefix>/<registry>/<repository>`, pushed there by skopeo), the snaps from the store-shaped local server.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.bundle.locks import load_lock
from components.bundle.preflight import preflight
from tests.support.program import ROOT
from tests.support.registry import build_layout, registry
from tests.support.snapstore import SnapStoreServer, StoreSnap


def _bundle(images_dir, charts_dir, env, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bundle.py"), "--dir", str(images_dir),
         "--charts-dir", str(charts_dir), *args],
        env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture
def bundle_dirs(tmp_path):
    images_dir, charts_dir = tmp_path / "offline-images", tmp_path / "charts"
    images_dir.mkdir()
    charts_dir.mkdir()
    (images_dir / "images.lock").write_text((ROOT / "offline-images" / "images.lock").read_text())
    (charts_dir / "charts.lock").write_text("# charts\nversion: 1\ncharts: []\n")
    return images_dir, charts_dir


@pytest.fixture
def sources(tmp_path, bundle_dirs):
    """A registry mirror holding every image the airgapped stack needs, and a store with its snaps."""
    from scripts.bundle import wanted_paths
    from scripts.bundler.images import source_reference

    images_dir, charts_dir = bundle_dirs
    wanted = wanted_paths("airgapped", images_dir, charts_dir)
    lock = yaml.safe_load((images_dir / "images.lock").read_text())
    snaps = [StoreSnap(s["name"], s["channel"], 100 + i, os.urandom(20_000 + i))
             for i, s in enumerate(lock["snaps"]) if s["file"] in wanted]
    store = SnapStoreServer(snaps)
    with registry(tmp_path) as running:
        layout = build_layout(tmp_path / "layout", layer_sizes=(2048,), architectures=("amd64",))
        for entry in lock["images"]:
            if entry["file"] in wanted:
                source = source_reference(entry["ref"], f"{running.host}/mirror")
                running.push(layout, f"{source.repository}", tag=source.tag)
        env = dict(os.environ, HOME=str(tmp_path / "home"), JHUB_SNAP_STORE_URL=store.url,
                   JHUB_INSECURE_REGISTRIES=running.host)
        yield env, running, store, layout
    store.close()


def test_bundle_records_digests_the_preflight_accepts_it_and_a_second_run_downloads_nothing(
        bundle_dirs, sources):
    images_dir, charts_dir = bundle_dirs
    env, running, store, layout = sources
    mirror = ["--mirror", f"{running.host}/mirror"]
    done = _bundle(images_dir, charts_dir, env, "--stack", "airgapped", *mirror)
    assert done.returncode == 0, done.stderr
    lock = yaml.safe_load((images_dir / "images.lock").read_text())
    microk8s = next(s for s in lock["snaps"] if s["name"] == "microk8s")
    assert microk8s["revision"] == store.snaps["microk8s"].revision
    assert microk8s["sha3_384"] == store.snaps["microk8s"].sha3_b64 and len(microk8s["sha256"]) == 64
    calico = next(i for i in lock["images"] if i["ref"] == "docker.io/calico/node:v3.28.1")
    assert calico["digest"] == layout.manifests["amd64"]["digest"] and len(calico["sha256"]) == 64
    cert_manager = next(i for i in lock["images"] if "cert-manager" in i["ref"])
    assert cert_manager["sha256"] is None and "digest" not in cert_manager, "only what that stack needs"
    assert (images_dir / "images.lock").read_text().startswith("# Every snap and image"), "header kept"
    load_lock(images_dir, charts_dir)  # the lock it wrote is valid

    from scripts.bundle import stack_settings

    settings = stack_settings("airgapped")
    offline = settings.offline.model_copy(update={"dir": str(images_dir), "charts_dir": str(charts_dir)})
    preflight(dataclasses.replace(settings, offline=offline), load_lock(images_dir, charts_dir))

    checked = _bundle(images_dir, charts_dir, env, "--check", "--stack", "airgapped")
    assert checked.returncode == 0, checked.stderr
    assert "bundle: complete for stack airgapped" in checked.stdout

    running.storage.rename(running.storage.with_name("gone"))  # nothing left to download from
    store.close()
    before = (images_dir / "images.lock").read_text()
    again = _bundle(images_dir, charts_dir, env, "--stack", "airgapped", *mirror)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("bundled and intact, skipped") == 16
    assert (images_dir / "images.lock").read_text() == before


def test_check_names_what_is_missing_or_wrong(bundle_dirs, sources):
    images_dir, charts_dir = bundle_dirs
    env, running, store, layout = sources
    assert _bundle(images_dir, charts_dir, env, "--stack", "airgapped", "--mirror",
                   f"{running.host}/mirror").returncode == 0
    lock_path = images_dir / "images.lock"
    lock = yaml.safe_load(lock_path.read_text())
    calico = next(i for i in lock["images"] if i["ref"] == "docker.io/calico/node:v3.28.1")
    calico["digest"] = "sha256:" + "1" * 64
    microk8s = next(s for s in lock["snaps"] if s["name"] == "microk8s")
    (images_dir / microk8s["file"]).unlink()
    Path(str(images_dir / microk8s["file"]) + ".part").write_bytes(b"half")
    pause = next(i for i in lock["images"] if i["ref"] == "registry.k8s.io/pause:3.10")
    pause["digest"] = None
    lock_path.write_text(yaml.safe_dump(lock, sort_keys=False))

    checked = _bundle(images_dir, charts_dir, env, "--check", "--stack", "airgapped")
    assert checked.returncode == 1
    err = checked.stderr
    assert "offline preflight" in err and "snaps/microk8s-1.32-stable.snap is missing" in err
    assert "interrupted download left microk8s-1.32-stable.snap.part (4 bytes)" in err
    assert f"holds docker.io/calico/node:v3.28.1 as {layout.manifests['amd64']['digest']}, images.lock says " \
           f"sha256:{'1' * 64}" in err
    assert "image registry.k8s.io/pause:3.10: images.lock records no manifest digest" in err


def test_check_reports_what_is_missing(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bundle.py"), "--check", "--stack", "airgapped"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "offline preflight" in done.stderr and "snap microk8s 1.32/stable" in done.stderr
    assert "images.lock records no revision and sha3_384" in done.stderr


def test_a_failed_entry_is_named_and_the_rest_is_bundled(bundle_dirs, sources):
    images_dir, charts_dir = bundle_dirs
    env, running, store, layout = sources
    store.snaps["core20"].serve = b"not the snap"
    done = _bundle(images_dir, charts_dir, env, "--stack", "airgapped", "--mirror", f"{running.host}/mirror")
    assert done.returncode == 1
    assert "bundle: 1 entry not bundled" in done.stderr and "snap core20 latest/stable" in done.stderr
    lock = yaml.safe_load((images_dir / "images.lock").read_text())
    assert next(s for s in lock["snaps"] if s["name"] == "core20")["sha256"] is None
    assert next(s for s in lock["snaps"] if s["name"] == "microk8s")["sha3_384"]
