"""Snaps with their assertions from a store-shaped HTTP server on 127.0.0.1 (tests/support/snapstore.py),
through scripts/bundler/snapstore.py: what `snap download` does, without snap."""

from __future__ import annotations

import base64
import hashlib
import os
import re

import pytest

from scripts.bundler import BundleError
from scripts.bundler.fetch import part_path
from scripts.bundler.snapstore import SnapStore, assertion_headers, fetch_snap
from tests.support.snapstore import STORE_KEY, StoreSnap, SnapStoreServer

CONTENT = os.urandom(300_000)


@pytest.fixture
def store():
    server = SnapStoreServer([StoreSnap("microk8s", "1.32/stable", 7967, CONTENT)])
    yield server
    server.close()


def _entry():
    return {"name": "microk8s", "channel": "1.32/stable", "revision": None, "file": "snaps/microk8s.snap",
            "sha256": None, "assertion": "snaps/microk8s.assert", "assertionSha256": None}


def test_a_snap_comes_with_its_assertions_and_the_lock_records_what_they_say(store, tmp_path):
    entry = _entry()
    fetch_snap(entry, tmp_path, store=SnapStore(store.url))
    assert (tmp_path / "snaps/microk8s.snap").read_bytes() == CONTENT
    snap = store.snaps["microk8s"]
    assert entry["revision"] == 7967 and entry["sha3_384"] == snap.sha3_b64
    assert entry["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    text = (tmp_path / "snaps/microk8s.assert").read_text()
    assert entry["assertionSha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert re.findall(r"^type: (\S+)$", text, re.M) == ["account-key", "account", "snap-declaration", "snap-revision"]
    assert assertion_headers(text)["public-key-sha3-384"] == STORE_KEY
    refresh = next(r for r in store.requests if r[0] == "POST")
    assert refresh[2]["Snap-Device-Series"] == "16" and refresh[2]["Snap-Device-Architecture"] == "amd64"
    paths = [path for method, path, _ in store.requests if method == "GET"]
    assert f"/v2/assertions/snap-revision/{snap.sha3_b64}" in paths
    assert f"/v2/assertions/snap-declaration/16/{snap.snap_id}" in paths
    assert f"/v2/assertions/account-key/{STORE_KEY}" in paths


def test_a_locked_revision_is_fetched_by_revision_and_an_intact_file_is_not_downloaded_again(store, tmp_path):
    entry = _entry()
    fetch_snap(entry, tmp_path, store=SnapStore(store.url))
    store.requests.clear()
    fetch_snap(entry, tmp_path, store=SnapStore(store.url))
    assert store.actions[-1]["revision"] == 7967 and "channel" not in store.actions[-1], "asked by revision"
    assert not any("/download/" in path for _, path, _ in store.requests), "the intact file is kept"


def test_bytes_other_than_the_store_says_are_refused(tmp_path):
    server = SnapStoreServer([StoreSnap("microk8s", "1.32/stable", 7967, CONTENT, serve=os.urandom(300_000))])
    try:
        entry = _entry()
        with pytest.raises(BundleError, match="sha3_384 of the download is"):
            fetch_snap(entry, tmp_path, store=SnapStore(server.url))
    finally:
        server.close()
    assert not (tmp_path / "snaps/microk8s.snap").exists() and not part_path(tmp_path / "snaps/microk8s.snap").exists()
    assert entry["revision"] is None and entry["sha256"] is None and "sha3_384" not in entry


def test_a_snap_revision_assertion_for_other_bytes_is_refused(tmp_path):
    other = hashlib.sha3_384(b"another build").digest()
    wrong = base64.urlsafe_b64encode(other).decode().rstrip("=")
    server = SnapStoreServer([StoreSnap("microk8s", "1.32/stable", 7967, CONTENT, assert_sha3=wrong)])
    try:
        entry = _entry()
        with pytest.raises(BundleError, match="no snap-revision assertion"):
            fetch_snap(entry, tmp_path, store=SnapStore(server.url))
    finally:
        server.close()
    assert not (tmp_path / "snaps/microk8s.snap").exists(), "an unverifiable snap is not kept"
    assert entry["sha256"] is None


def test_a_cut_download_resumes_with_a_range_request(tmp_path):
    server = SnapStoreServer([StoreSnap("microk8s", "1.32/stable", 7967, CONTENT, cut_after=100_000)])
    try:
        entry = _entry()
        fetch_snap(entry, tmp_path, store=SnapStore(server.url))
    finally:
        server.close()
    assert (tmp_path / "snaps/microk8s.snap").read_bytes() == CONTENT
    ranges = [h.get("Range") for _, path, h in server.requests if "/download/" in path]
    assert ranges[0] is None and ranges[1] == "bytes=100000-"


def test_a_channel_the_store_does_not_have_is_named(store, tmp_path):
    entry = dict(_entry(), channel="9.99/stable")
    with pytest.raises(BundleError, match="snap microk8s channel 9.99/stable for amd64: revision-not-found"):
        fetch_snap(entry, tmp_path, store=SnapStore(store.url))
