"""The notebook images (images/notebook/) in the program: online, `pulumi up` builds each one the spawn form
offers with the bundle's own builder and imports it on every node (as the portal's image); with a registry
mirror the bundled tarball is imported; air-gapped, the cluster's image step imports it from the bundle; and
the build step's command really builds, run here with a stand-in buildah."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest
import yaml

from components.bundle import built
from components.bundle.preflight import PreflightError
from tests.program.test_offline import AIRGAPPED, THREE, airgapped, make_bundle
from tests.support import program as support
from tests.support.program import ROOT, run_program, stack_config, with_test_key
from tests.support.registry import build_layout
from tests.support.secrets_for_tests import add_secrets

CPU, GPU = "localhost/jhub-notebook-cpu:0.1.0", "localhost/jhub-notebook-gpu:0.1.0"
USER_IMAGES = "jhub:jupyterhub:UserImages"
FAKES = ROOT / "tests" / "offline" / "fakes"
NOTEBOOKS = [{"name": "gpu", "image": GPU, "default": True}, {"name": "cpu", "image": CPU},
             {"name": "sample", "image": "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"}]


def ok(run):
    assert run.error is None, f"program failed: {run.error}"
    return run


def three(**hub):
    return stack_config(THREE, {"jhub:hub": {"storage": {"type": "shared-hostpath", "hostPath": "/srv/u"},
                                             **hub}})


def test_the_dev_stack_builds_its_notebook_image_here_and_imports_it(monkeypatch):
    sha, digest = "a" * 64, "sha256:" + "b" * 64
    monkeypatch.setitem(support.FAKE_STDOUT, "notebook-cpu-image-build", f"{sha} {digest}\n")
    run = ok(run_program(stack_config(ROOT / "Pulumi.dev.yaml")))
    step = run.named("notebook-cpu-image-build")
    assert run.by_urn()[step.parent].type == USER_IMAGES
    create = step.inputs["create"]
    assert f"scripts/bundle.py --dir offline-images --build {CPU}" in create
    assert str(ROOT) not in create, "relative to the project folder: a moved checkout still builds"
    assert step.inputs["triggers"] == [built.source_digest(built.BuildSpec(
        context="images/notebook", target="cpu", args=(("VARIANT", "cpu"),)))]
    node = next(r.name for r in run.resources() if r.name.endswith("-notebook-cpu-image"))
    imported = run.named(node).inputs["create"]
    assert "images.sh" in imported
    # hosts/images.sh takes only an absolute folder: the local node copies the tarball from where the build
    # wrote it (relative to the project) into the bundle folder, and imports it from there
    assert ("install -D -m 0644 offline-images/images/jhub-notebook-cpu-0.1.0.tar "
            "/var/lib/jhub/bundle/images/jhub-notebook-cpu-0.1.0.tar.part") in imported
    assert "JHUB_IMAGE_DIR=/var/lib/jhub/bundle/images " in imported and str(ROOT) not in imported
    assert f"jhub-notebook-cpu-0.1.0.tar {sha} {CPU} {digest}" in imported, "checked by sha256 and digest"
    assert run.named(node).inputs["triggers"] == [sha]


def test_online_ssh_nodes_each_get_a_copy_and_an_import_of_every_built_image():
    run = ok(run_program(three(images=NOTEBOOKS)))
    names = {r.name for r in run.resources()}
    for slug in ("notebook-gpu", "notebook-cpu"):
        assert f"{slug}-image-build" in names
        for node in ("gpu01", "gpu02", "gpu03"):
            assert {f"{node}-{slug}-image-copy", f"{node}-{slug}-image"} <= names
    assert not [n for n in names if "sample" in n], "a registry image is pulled, not built"
    # one build at a time, in the lock's order (cpu before gpu, whatever the spawn form's order)
    assert run.named("notebook-cpu-image-build").urn in run.named("notebook-gpu-image-build").dependencies
    assert "notebook-kernels-image-build" not in names, "only what the spawn form offers"


def test_a_localhost_image_the_lock_cannot_build_is_refused_by_key():
    run = run_program(three(images=[{"name": "mine", "image": "localhost/mine:1.0"}]))
    assert run.error is not None
    assert "jhub:hub.images[0].image: localhost/mine:1.0 is in no registry" in str(run.error)


def test_with_a_registry_mirror_the_bundled_notebook_tarballs_are_imported(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path)
    config = airgapped(images_dir, charts_dir, registryMirror="https://harbor.local")
    config["jhub:hub"] = json.dumps({**json.loads(config["jhub:hub"]), "images": NOTEBOOKS})
    run = ok(run_program(config))
    names = {r.name for r in run.resources()}
    assert "notebook-gpu-image-build" not in names
    lock = yaml.safe_load((images_dir / "images.lock").read_text())
    sha = next(e["sha256"] for e in lock["images"] if e["ref"] == GPU)
    copy = run.named("gpu02-notebook-gpu-image-copy").inputs["create"]
    assert "images/jhub-notebook-gpu-0.1.0.tar" in copy and sha in copy
    assert f"jhub-notebook-gpu-0.1.0.tar {sha} {GPU} -" in run.named("gpu02-notebook-gpu-image").inputs["create"]


def test_air_gapped_nodes_import_the_notebook_images_with_the_rest_of_the_bundle(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path)
    config = airgapped(images_dir, charts_dir)
    config["jhub:hub"] = json.dumps({**json.loads(config["jhub:hub"]), "images": NOTEBOOKS})
    run = ok(run_program(config))
    assert not run.of_type(USER_IMAGES)
    step = run.named("gpu03-images").inputs["create"]
    assert "jhub-notebook-gpu-0.1.0.tar" in step and "jhub-notebook-cpu-0.1.0.tar" in step


def test_the_airgapped_example_offers_the_notebook_images_and_names_them_until_bundled():
    config = stack_config(AIRGAPPED)
    hub = json.loads(config["jhub:hub"])
    assert [i["image"] for i in hub["images"]] == [GPU, CPU, "localhost/jhub-notebook-kernels:0.1.0"]
    with_test_key(config)
    values, secret_keys = add_secrets(config)
    run = run_program(values, secret_keys=secret_keys, stack="airgapped")
    assert isinstance(run.error, PreflightError), run.error
    for tarball in ("jhub-notebook-gpu-0.1.0.tar", "jhub-notebook-cpu-0.1.0.tar", "jhub-notebook-kernels-0.1.0.tar"):
        assert tarball in str(run.error)


@pytest.mark.parametrize("slug, ref", [("notebook-cpu", CPU), ("portal", "localhost/jhub-portal:0.1.0")])
def test_the_registered_build_command_builds_with_the_bundles_builder(tmp_path, slug, ref):
    """The step's own command, run in a project folder (here: one that links this checkout's scripts) with
    a stand-in buildah: it prints the tarball's sha256 and digest, which the import step reads."""
    run = ok(run_program(stack_config(ROOT / "Pulumi.dev.yaml")))
    create = run.named(f"{slug}-image-build").inputs["create"]
    project = tmp_path / "project"
    (project / "offline-images").mkdir(parents=True)
    (project / "scripts").symlink_to(ROOT / "scripts")
    (project / "offline-images" / "images.lock").write_text((ROOT / "offline-images" / "images.lock").read_text())
    layout = build_layout(tmp_path / "layout", tag="0.1.0")
    env = dict(os.environ, FAKE_BUILDAH_LAYOUT=str(layout.path), FAKE_BUILDAH_CALLS=str(tmp_path / "calls"),
               PATH=f"{FAKES}{os.pathsep}{ROOT / '.venv' / 'bin'}{os.pathsep}/usr/bin:/bin")
    done = subprocess.run(["/bin/sh", "-c", create], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    sha, digest = done.stdout.split()
    entry = next(e for e in yaml.safe_load((ROOT / "offline-images" / "images.lock").read_text())["images"]
                 if e["ref"] == ref)
    tarball = project / "offline-images" / entry["file"]
    assert sha == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert digest == layout.manifests["amd64"]["digest"]


def test_the_local_copy_puts_the_built_tarball_in_the_bundle_folder(tmp_path, monkeypatch):
    """The local node's copy, run for real (the bundle folder moved under tmp_path): from the project's
    build output, relative to the project folder, to the absolute folder hosts/images.sh reads."""
    from components.cluster import host as host_module

    monkeypatch.setattr(host_module, "BUNDLE_DIR", str(tmp_path / "bundle"))
    project = tmp_path / "project"
    (project / "offline-images" / "images").mkdir(parents=True)
    (project / "offline-images" / "images" / "x.tar").write_bytes(b"image")
    shell = built.local_copy(ROOT / "offline-images", "images/x.tar")
    assert str(ROOT) not in shell
    done = subprocess.run(["/bin/sh", "-c", shell + "echo copied"], cwd=project, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "copied\n", done.stderr
    assert (tmp_path / "bundle" / "images" / "x.tar").read_bytes() == b"image"
    (project / "offline-images" / "images" / "x.tar").unlink()
    failed = subprocess.run(["/bin/sh", "-c", shell + "echo imported"], cwd=project, capture_output=True, text=True)
    assert failed.returncode == 1 and "imported" not in failed.stdout, "no import without the tarball"
