"""The lock's optional digest fields: old entries (null or absent) stay valid, malformed ones are named."""

from __future__ import annotations

import pytest

from components.bundle.locks import LockError, load_lock
from tests.support.program import ROOT

SNAP = ("{name: microk8s, channel: 1.32/stable, revision: %s, file: snaps/m.snap, sha256: null, "
        "assertion: snaps/m.assert, assertionSha256: null, sha3_384: %s, features: [microk8s]}")
IMAGE = "{ref: docker.io/calico/node:v3.28.1, file: images/c.tar, sha256: null, digest: %s, features: [microk8s]}"


def _lock(tmp_path, snap="null, null", image="null"):
    (tmp_path / "images.lock").write_text(
        f"version: 1\nsnaps:\n  - {SNAP % tuple(snap.split(', '))}\nimages:\n  - {IMAGE % image}\n")
    (tmp_path / "charts.lock").write_text("version: 1\ncharts: []\n")
    return load_lock(tmp_path, tmp_path)


def test_the_shipped_lock_and_entries_without_digests_load():
    load_lock(ROOT / "offline-images", ROOT / "charts")


def test_recorded_digests_are_carried(tmp_path):
    sha3 = "F5gwZqB3EBPQ62fhu2CL65TPNdyLbxCVdsxEReYrnp5sNu2z2BXAjdk_BRfUKJgV"
    lock = _lock(tmp_path, snap=f"7967, {sha3}", image="'sha256:" + "a" * 64 + "'")
    assert lock.images[0].digest == "sha256:" + "a" * 64
    assert lock.snaps[0].digest == sha3 and lock.snaps[0].version == "1.32/stable rev 7967"


@pytest.mark.parametrize("snap, image, message", [
    ("null, null", "'sha256:ABC'", "'digest' must be 'sha256:' and 64 lowercase hex digits or null"),
    ("null, 'abc'", "null", "'sha3_384' must be 64 url-safe base64 characters"),
    ("'x', null", "null", "'revision' must be a positive whole number or null"),
])
def test_malformed_digests_are_named(tmp_path, snap, image, message):
    with pytest.raises(LockError, match=message):
        _lock(tmp_path, snap=snap, image=image)
