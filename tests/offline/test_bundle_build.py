"""Images the project builds (the portal, the notebook images): the builder's command lines, the refusal without a builder, and
the OCI layout a builder writes turned into the bundle's tarball."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.bundle.locks import BuildSpec, load_lock

from scripts.bundler import BundleError
from scripts.bundler.build import archive_from_layout, build_image, commands
from scripts.bundler.ociarchive import verify_archive
from tests.support.program import ROOT
from tests.support.registry import build_layout

FAKES = Path(__file__).resolve().parent / "fakes"


def _entry():
    return {"ref": "localhost/jhub-portal:dev", "file": "images/jhub-portal-dev.tar", "sha256": None,
            "build": "portal"}


def test_without_a_builder_the_bundle_names_what_to_install(tmp_path):
    with pytest.raises(BundleError, match=r"needs buildah \(apt-get install buildah\), podman, or docker"):
        build_image(_entry(), tmp_path, ROOT, which=lambda name: None)


def test_a_missing_dockerfile_is_named(tmp_path):
    entry = dict(_entry(), build={"context": "portal", "dockerfile": "Nope"})
    with pytest.raises(BundleError, match="portal/Nope does not exist"):
        build_image(entry, tmp_path, ROOT, which=lambda name: "/usr/bin/" + name)


def test_buildah_builds_for_amd64_and_writes_an_oci_layout(tmp_path):
    context = ROOT / "portal"
    argv = commands("/usr/bin/buildah", "localhost/jhub-portal:dev", context, context / "Dockerfile", tmp_path)
    assert argv == [["/usr/bin/buildah", "bud", "--platform", "linux/amd64", "-f", str(context / "Dockerfile"),
                     "-t", "localhost/jhub-portal:dev", str(context)],
                    ["/usr/bin/buildah", "push", "localhost/jhub-portal:dev", f"oci:{tmp_path}:dev"]]


def test_a_builders_layout_becomes_the_bundles_tarball(tmp_path):
    layout = build_layout(tmp_path / "layout", tag="dev")  # an index of amd64 and arm64, as a multi-arch build
    target = tmp_path / "images/portal.tar"
    digest = archive_from_layout(layout.path, target, ["localhost/jhub-portal:dev"])
    assert digest == layout.manifests["amd64"]["digest"]
    assert verify_archive(target) == {"localhost/jhub-portal:dev": digest}


def _notebook(target="gpu", **build):
    return {"ref": f"localhost/jhub-notebook-{target}:0.1.0", "file": f"images/jhub-notebook-{target}-0.1.0.tar",
            "sha256": None, "build": {"context": "images/notebook", "target": target,
                                      "args": {"VARIANT": target}, **build}}


def test_a_target_and_build_args_reach_every_builder(tmp_path):
    spec = BuildSpec.parse(_notebook()["build"], "test")
    context = ROOT / "images/notebook"
    options = ["--platform", "linux/amd64", "-f", str(context / "Dockerfile"), "--target", "gpu",
               "--build-arg", "VARIANT=gpu"]
    ref = "localhost/jhub-notebook-gpu:0.1.0"
    buildah = commands("/usr/bin/buildah", ref, context, context / "Dockerfile", tmp_path, spec)
    assert buildah[0] == ["/usr/bin/buildah", "bud", *options, "-t", ref, str(context)]
    podman = commands("/usr/bin/podman", ref, context, context / "Dockerfile", tmp_path, spec)
    assert podman[0] == ["/usr/bin/podman", "build", *options, "-t", ref, str(context)]
    docker = commands("/usr/bin/docker", ref, context, context / "Dockerfile", tmp_path, spec)
    assert docker == [["/usr/bin/docker", "buildx", "build", *options, "-t", ref,
                       "--output", f"type=oci,dest={tmp_path},tar=false", str(context)]]


@pytest.mark.parametrize("build, message", [
    ({"context": "images/notebook", "target": "gpu; rm -rf /"}, "must be a stage name"),
    ({"context": "images/notebook", "args": {"VARIANT": True}}, "plain values"),
    ({"context": "images/notebook", "args": {"A-B": "x"}}, "plain values"),
    ({"context": "../elsewhere"}, "relative path inside the repository"),
    ({"context": "images/notebook", "tag": "x"}, "unknown keys"),
])
def test_a_malformed_build_spec_is_refused_before_any_build(tmp_path, build, message):
    entry = dict(_notebook(), build=build)
    with pytest.raises(BundleError, match=message):
        build_image(entry, tmp_path, ROOT, which=lambda name: "/usr/bin/" + name)


def test_the_lock_gives_each_built_image_its_spec():
    lock = load_lock(ROOT / "offline-images", ROOT / "charts")
    built = {f.name: f.build for f in lock.images if f.build is not None}
    assert built["localhost/jhub-portal:0.1.0"] == BuildSpec(context="portal")
    assert built["localhost/jhub-notebook-gpu:0.1.0"] == BuildSpec(
        context="images/notebook", target="gpu", args=(("VARIANT", "gpu"),))
    for spec in built.values():
        assert (ROOT / spec.context / spec.dockerfile).is_file()


def _fake_buildah_env(tmp_path):
    layout = build_layout(tmp_path / "layout", tag="0.1.0")
    return dict(os.environ, FAKE_BUILDAH_LAYOUT=str(layout.path), FAKE_BUILDAH_CALLS=str(tmp_path / "calls"),
                PATH=f"{FAKES}{os.pathsep}/usr/bin:/bin"), layout


def _lock_copy(tmp_path, entry):
    images_dir = tmp_path / "offline-images"
    images_dir.mkdir()
    (images_dir / "images.lock").write_text(yaml.safe_dump({"version": 1, "images": [entry]}))
    return images_dir


def test_build_one_prints_the_tarballs_sha256_and_digest_and_leaves_the_lock_alone(tmp_path):
    env, layout = _fake_buildah_env(tmp_path)
    images_dir = _lock_copy(tmp_path, _notebook())
    before = (images_dir / "images.lock").read_text()
    done = subprocess.run([sys.executable, str(ROOT / "scripts/bundle.py"), "--dir", str(images_dir),
                           "--build", "localhost/jhub-notebook-gpu:0.1.0"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    tarball = images_dir / "images/jhub-notebook-gpu-0.1.0.tar"
    sha, digest = done.stdout.split()
    assert sha == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert digest == layout.manifests["amd64"]["digest"]
    assert verify_archive(tarball) == {"localhost/jhub-notebook-gpu:0.1.0": digest}
    assert (images_dir / "images.lock").read_text() == before
    call = (tmp_path / "calls").read_text().splitlines()[0]
    assert "--target gpu --build-arg VARIANT=gpu" in call


def test_build_one_names_an_unknown_image_and_a_stage_the_definition_lacks(tmp_path):
    env, _ = _fake_buildah_env(tmp_path)
    images_dir = _lock_copy(tmp_path, _notebook(target="nope"))
    run = lambda ref: subprocess.run(  # noqa: E731
        [sys.executable, str(ROOT / "scripts/bundle.py"), "--dir", str(images_dir), "--build", ref],
        env=env, capture_output=True, text=True, timeout=120)
    missing = run("localhost/elsewhere:1")
    assert missing.returncode == 1 and "no `build:` entry for localhost/elsewhere:1" in missing.stderr
    wrong = run("localhost/jhub-notebook-nope:0.1.0")
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert "target 'nope' was not found" in wrong.stderr and "buildah bud` failed" in wrong.stderr
