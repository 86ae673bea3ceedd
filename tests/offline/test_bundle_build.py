"""Images the project builds (the portal): the builder's command lines, the refusal without a builder, and
the OCI layout a builder writes turned into the bundle's tarball."""

from __future__ import annotations

import pytest

from scripts.bundler import BundleError
from scripts.bundler.build import archive_from_layout, build_image, commands
from scripts.bundler.ociarchive import verify_archive
from tests.support.program import ROOT
from tests.support.registry import build_layout


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
