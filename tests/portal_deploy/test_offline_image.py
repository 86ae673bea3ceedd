"""Where the portal image comes from: air-gapped, the bundle's tarball (built by scripts/bundle.py from the
lock's `build:` entry) is imported by the cluster's own image step; with a registry mirror, the portal imports
the bundled tarball itself; online, `pulumi up` builds it (test_program.py)."""

from __future__ import annotations


import yaml

from components.bundle.locks import load_lock
from components.portal import images as im
from tests.program.test_offline import AIRGAPPED, airgapped, make_bundle
from tests.support.program import ROOT, run_program, stack_config, with_test_key


def ok(run):
    assert run.error is None, f"program failed: {run.error}"
    return run


def test_the_lock_lists_the_portal_images_with_their_feature():
    lock = load_lock(ROOT / "offline-images", ROOT / "charts")
    for ref in (im.PORTAL_IMAGE, im.POSTGRES_IMAGE):
        entry = lock.image_for(ref)
        assert entry is not None and "portal" in entry.features, ref
        assert entry.path == (im.PORTAL_IMAGE_FILE if ref == im.PORTAL_IMAGE else entry.path)
    raw = yaml.safe_load((ROOT / "offline-images" / "images.lock").read_text())
    built = {e["ref"]: e for e in raw["images"] if e.get("build")}
    assert built[im.PORTAL_IMAGE]["features"] == ["portal"]  # the others are notebook images (tests/images)
    assert all(ref == im.PORTAL_IMAGE or ref.startswith("localhost/jhub-notebook-") for ref in built)
    assert (ROOT / built[im.PORTAL_IMAGE]["build"] / "Dockerfile").is_file()


def test_air_gapped_nodes_import_the_bundled_portal_and_postgres(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path)
    run = ok(run_program(airgapped(images_dir, charts_dir)))
    names = {r.name for r in run.resources()}
    assert "portal-image-build" not in names and not any(n.endswith("-portal-image") for n in names)
    for node in ("gpu01", "gpu02", "gpu03"):
        step = run.named(f"{node}-images").inputs["create"]
        assert "jhub-portal-0.1.0.tar" in step and im.PORTAL_IMAGE in step and im.POSTGRES_IMAGE in step


def test_with_a_registry_mirror_the_portal_imports_its_bundled_tarball(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path)
    run = ok(run_program(airgapped(images_dir, charts_dir, registryMirror="https://harbor.local")))
    step = run.named("gpu02-portal-image").inputs["create"]
    assert "images.sh" in step and im.PORTAL_IMAGE in step
    copy = run.named("gpu02-portal-image-copy").inputs["create"]
    assert "jhub-portal-0.1.0.tar" in copy
    assert "portal-image-build" not in {r.name for r in run.resources()}


def test_the_airgapped_example_names_the_unbuilt_portal_image():
    """Without a bundle the preflight names the portal image (and PostgreSQL) among what is missing."""
    from components.bundle.preflight import PreflightError
    from tests.support.secrets_for_tests import add_secrets

    config = stack_config(AIRGAPPED)
    with_test_key(config)
    values, secret_keys = add_secrets(config)
    run = run_program(values, secret_keys=secret_keys, stack="airgapped")
    assert isinstance(run.error, PreflightError), run.error
    assert "jhub-portal-0.1.0.tar" in str(run.error) and "postgres-17.6-bookworm.tar" in str(run.error)
