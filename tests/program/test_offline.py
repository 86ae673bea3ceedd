"""Air-gapped mode: the preflight names every missing file before any host is touched; a complete bundle
is uploaded to each SSH node and imported; a registry mirror replaces the image tarballs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from components.bundle.preflight import PreflightError
from tests.support.program import ROOT, run_program, stack_config
from tests.support.secrets_for_tests import add_secrets

THREE = ROOT / "tests" / "stacks" / "Pulumi.three.yaml"
AIRGAPPED = ROOT / "Pulumi.airgapped.yaml"


def make_bundle(base: Path, *, corrupt: str = "") -> tuple[Path, Path]:
    """A bundle built like scripts/bundle.py would: real files, their sha256 in copies of the locks."""
    images_dir, charts_dir = base / "offline-images", base / "charts"
    lock = yaml.safe_load((ROOT / "offline-images" / "images.lock").read_text())
    for entry in lock["snaps"]:
        for file_key, sum_key in (("file", "sha256"), ("assertion", "assertionSha256")):
            entry[sum_key] = _write(images_dir / entry[file_key], f"{entry['name']}:{file_key}")
        entry["revision"] = 1234
    for entry in lock["images"]:
        entry["sha256"] = _write(images_dir / entry["file"], entry["ref"])
    (images_dir / "images.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    charts_dir.mkdir(parents=True, exist_ok=True)
    charts = yaml.safe_load((ROOT / "charts" / "charts.lock").read_text())
    for entry in charts["charts"]:
        entry["sha256"] = _write(charts_dir / entry["file"], f"{entry['name']}-{entry['version']}")
    (charts_dir / "charts.lock").write_text(yaml.safe_dump(charts, sort_keys=False))
    if corrupt:
        (images_dir / corrupt).write_bytes(b"tampered")
    return images_dir, charts_dir


def _write(path: Path, content: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode())
    return hashlib.sha256(content.encode()).hexdigest()


def airgapped(images_dir: Path, charts_dir: Path, **offline) -> dict:
    return stack_config(THREE, {"jhub:offline": {"mode": "air-gapped", "dir": str(images_dir),
                                                 "chartsDir": str(charts_dir), **offline}})


def test_missing_bundle_is_named_before_anything_is_registered(tmp_path):
    images_dir, charts_dir = tmp_path / "offline-images", tmp_path / "charts"
    images_dir.mkdir()
    charts_dir.mkdir()
    (images_dir / "images.lock").write_text((ROOT / "offline-images" / "images.lock").read_text())
    (charts_dir / "charts.lock").write_text((ROOT / "charts" / "charts.lock").read_text())
    run = run_program(airgapped(images_dir, charts_dir))
    assert isinstance(run.error, PreflightError), run.error
    text = str(run.error)
    assert "snap microk8s 1.32/stable" in text and "not bundled yet" in text
    assert "docker.io/calico/node:v3.28.1" in text
    assert "coredns" in text and "hostpath-provisioner" in text
    assert "metrics-server" not in text, "only what the config needs is asked for"
    assert run.resources() == []


def test_wrong_checksum_and_missing_file_are_both_reported(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path, corrupt="images/coredns-1.10.1.tar")
    (images_dir / "images" / "pause-3.10.tar").unlink()
    run = run_program(airgapped(images_dir, charts_dir))
    assert isinstance(run.error, PreflightError)
    lines = str(run.error).splitlines()
    assert any("coredns-1.10.1.tar has sha256" in x for x in lines)
    assert any("pause-3.10.tar is missing" in x for x in lines)
    assert run.resources() == []


def test_complete_bundle_is_uploaded_to_ssh_nodes_and_imported(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path)
    run = run_program(airgapped(images_dir, charts_dir))
    assert run.error is None, run.error
    upload = run.named("gpu02-upload")
    manifest = upload.inputs["create"].split("<<'JHUB_MANIFEST'\n", 1)[1].split("\nJHUB_MANIFEST", 1)[0]
    uploaded = {line.split("\t")[1]: line.split("\t")[2] for line in manifest.splitlines()}
    assert uploaded["snaps/microk8s-1.32-stable.snap"] == str(images_dir / "snaps" / "microk8s-1.32-stable.snap")
    assert "images/calico-node-v3.28.1.tar" in uploaded
    assert not any("metrics-server" in p for p in uploaded)
    # one upload step per node, whose inputs are the locked checksums (no re-hashing of assets)
    assert not run.of_type("command:remote:CopyToRemote")
    assert {r.name for r in run.resources() if r.name.endswith("-upload")} == {
        "gpu01-upload", "gpu02-upload", "gpu03-upload"}
    images = run.named("gpu02-images").inputs["create"]
    assert "coredns-1.10.1.tar " in images and "images/coredns" not in images and "docker.io/coredns/coredns:1.10.1" in images
    install = run.named("gpu02-install").inputs["create"]
    assert install.index("snapd snapd.snap snapd.assert") < install.index("core20 core20.snap")
    assert install.index("core20 ") < install.index("microk8s microk8s-1.32-stable.snap")
    # the install waits for the upload of its node
    assert upload.urn in run.named("gpu02-install").dependencies


def test_registry_mirror_replaces_tarballs(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path)
    for tar in (images_dir / "images").iterdir():
        tar.unlink()  # a site with Harbor has no tarballs
    run = run_program(airgapped(images_dir, charts_dir, registryMirror="https://harbor.local",
                                registryUpstreams={"docker.io": "/v2/dockerhub", "quay.io": "/v2/quay"}))
    assert run.error is None, run.error
    assert not any(r.name.endswith("-images") for r in run.resources())
    registry = run.named("gpu02-registry").inputs["create"]
    assert "JHUB_REGISTRY_MIRROR=https://harbor.local" in registry
    assert "docker.io /v2/dockerhub" in registry
    upload = run.named("gpu02-upload").inputs["create"]
    assert "\timages/" not in upload and "\tsnaps/microk8s-1.32-stable.snap\t" in upload


def test_online_mode_needs_no_bundle():
    run = run_program(stack_config(THREE))
    assert run.error is None
    assert not any(r.name.endswith("-upload") for r in run.resources())
    assert "JHUB_MODE=online" in run.named("gpu01-install").inputs["create"]


def test_airgapped_example_stack_only_fails_on_the_bundle():
    """The committed air-gapped example is a valid config: without a bundle only the preflight stops it."""
    key = ROOT / "tests" / "stacks" / "test_ed25519"
    config = stack_config(AIRGAPPED)
    ssh = json.loads(config["jhub:ssh"])
    ssh["privateKeyFile"] = str(key)
    config["jhub:ssh"] = json.dumps(ssh)
    config, secret_keys = add_secrets(config)  # the client secret and TLS key are set with --secret
    run = run_program(config, secret_keys=secret_keys, stack="airgapped")
    assert isinstance(run.error, PreflightError), run.error


@pytest.mark.parametrize("stack", ["Pulumi.dev.yaml", "Pulumi.airgapped.yaml"])
def test_example_stacks_only_use_documented_keys(stack):
    readme = (ROOT / "README.md").read_text()
    data = yaml.safe_load((ROOT / stack).read_text())["config"]
    for key in data:
        assert f"`{key}" in readme, f"{key} from {stack} is not documented in README.md"


def test_the_import_names_each_tarballs_manifest_digest_from_the_lock(tmp_path):
    """hosts/images.sh imports and pins by the digest the bundle recorded; a lock entry without one
    (an older lock) says '-' and is imported by its sha256 alone."""
    images_dir, charts_dir = make_bundle(tmp_path)
    lock_file = images_dir / "images.lock"
    lock = yaml.safe_load(lock_file.read_text())
    digest = "sha256:" + "c" * 64
    for entry in lock["images"]:
        if entry["ref"] == "docker.io/coredns/coredns:1.10.1":
            entry["digest"] = digest
    lock_file.write_text(yaml.safe_dump(lock, sort_keys=False))
    run = run_program(airgapped(images_dir, charts_dir))
    assert run.error is None, run.error
    create = run.named("gpu02-images").inputs["create"]
    sums = {e["file"].rsplit("/", 1)[1]: e["sha256"] for e in lock["images"]}
    assert f"coredns-1.10.1.tar {sums['coredns-1.10.1.tar']} docker.io/coredns/coredns:1.10.1 {digest}\n" in create
    assert f"pause-3.10.tar {sums['pause-3.10.tar']} registry.k8s.io/pause:3.10 -\n" in create
