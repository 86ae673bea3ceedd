"""Images copied from a real distribution registry on 127.0.0.1 (Debian's docker-registry, fed by skopeo
from OCI layouts built here) by scripts/bundler, Python alone: the tarball holds the linux/amd64 image
only, imports into a real containerd under the manifest digest the lock records, and every byte is checked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts.bundler import BundleError
from scripts.bundler.fetch import part_path
from scripts.bundler.images import BLOB_DIR, fetch_image
from scripts.bundler.oci import Registry
from scripts.bundler.ociarchive import verify_archive
from tests.support.containerd import containerd
from tests.support.registry import SKOPEO, TokenService, build_layout, htpasswd, registry


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no credentials of this machine's user
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def pushed(tmp_path, env):
    with registry(tmp_path) as running:
        env.setenv("JHUB_INSECURE_REGISTRIES", running.host)
        layout = build_layout(tmp_path / "layout")
        yield running, layout, running.push(layout, "team/app")


def _entry(ref):
    return {"ref": ref, "file": "images/app.tar", "sha256": None, "alsoTagged": ["example.org/team/app:1.0"]}


def test_the_tarball_holds_the_amd64_image_under_its_registry_digest(pushed, tmp_path):
    running, layout, ref = pushed
    entry = _entry(ref)
    fetch_image(entry, tmp_path / "out")
    amd64 = layout.manifests["amd64"]
    assert entry["digest"] == amd64["digest"]
    tarball = tmp_path / "out/images/app.tar"
    assert entry["sha256"] == hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert verify_archive(tarball) == {ref: amd64["digest"], "example.org/team/app:1.0": amd64["digest"]}
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        index = json.loads(tar.extractfile("index.json").read())
    blobs = {n.rsplit("/", 1)[1] for n in names if n.startswith("blobs/sha256/") and n != "blobs/sha256"}
    wanted = {d.split(":")[1] for d in [amd64["digest"], amd64["config"]] + amd64["layers"]}
    assert blobs == wanted, "only the amd64 image's blobs, none of arm64"
    assert "manifest.json" not in names and "oci-layout" in names
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64"}
    assert not list((tmp_path / "out" / BLOB_DIR).iterdir()), "the blob cache is emptied once the tarball is written"

    inspected = subprocess.run([SKOPEO, "inspect", f"oci-archive:{tarball}:1.0"], capture_output=True, text=True)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Digest"] == amd64["digest"]
    assert json.loads(inspected.stdout)["Architecture"] == "amd64"

    again = _entry(ref)
    fetch_image(again, tmp_path / "again")
    assert again["sha256"] == entry["sha256"], "the same image gives a byte-identical tarball"


def test_a_real_containerd_imports_it_by_digest(pushed, tmp_path):
    running, layout, ref = pushed
    entry = _entry(ref)
    fetch_image(entry, tmp_path / "out")
    with containerd() as ctr:
        # --all-platforms: the index names no platform whose blobs the tarball lacks
        for flag in (["--all-platforms"], ["--platform", "linux/amd64"]):
            imported = subprocess.run(ctr + ["images", "import", *flag, "--no-unpack",
                                             str(tmp_path / "out" / entry["file"])], capture_output=True, text=True)
            assert imported.returncode == 0, imported.stderr
        listed = subprocess.run(ctr + ["images", "ls"], capture_output=True, text=True, check=True).stdout
    rows = {line.split()[0]: line.split()[2] for line in listed.splitlines()[1:]}
    assert rows == {ref: entry["digest"], "example.org/team/app:1.0": entry["digest"]}


def test_docker_typed_images_are_bundled_and_import_too(tmp_path, env):
    """Most images on Docker Hub and quay.io are a Docker manifest list of v2 schema 2 manifests."""
    with registry(tmp_path) as running:
        env.setenv("JHUB_INSECURE_REGISTRIES", running.host)
        ref = running.push(build_layout(tmp_path / "layout"), "team/app", docker_types=True)
        listed = running.raw(ref)
        entry = _entry(ref)
        fetch_image(entry, tmp_path / "out")
    assert listed["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    amd64 = next(m for m in listed["manifests"] if m["platform"]["architecture"] == "amd64")
    assert entry["digest"] == amd64["digest"]
    tarball = tmp_path / "out" / entry["file"]
    assert verify_archive(tarball)[ref] == amd64["digest"]
    with containerd() as ctr:
        imported = subprocess.run(ctr + ["images", "import", "--platform", "linux/amd64", "--no-unpack", str(tarball)],
                                  capture_output=True, text=True)
        assert imported.returncode == 0, imported.stderr
        rows = subprocess.run(ctr + ["images", "ls"], capture_output=True, text=True, check=True).stdout
    row = next(line.split() for line in rows.splitlines() if line.startswith(ref + " "))
    assert row[1:3] == ["application/vnd.docker.distribution.manifest.v2+json", amd64["digest"]]


def test_a_layer_another_bundled_image_holds_is_copied_not_downloaded(pushed, tmp_path):
    running, layout, ref = pushed
    fetch_image(_entry(ref), tmp_path / "out")
    shared = layout.manifests["amd64"]["layers"][1]
    running.blob_file(shared).write_bytes(b"the registry no longer has it")
    other = dict(_entry(ref), file="images/other.tar", alsoTagged=[])
    fetch_image(other, tmp_path / "out")  # would fail the digest check if the layer were downloaded
    assert verify_archive(tmp_path / "out/images/other.tar") == {ref: layout.manifests["amd64"]["digest"]}


def test_a_pinned_digest_is_what_is_fetched_and_a_wrong_one_is_refused(pushed, tmp_path):
    running, layout, ref = pushed
    entry = dict(_entry(ref), digest="sha256:" + "0" * 64)
    with pytest.raises(BundleError, match="manifest sha256:0{64} not found"):
        fetch_image(entry, tmp_path / "out")
    assert not (tmp_path / "out/images/app.tar").exists() and entry["sha256"] is None
    fetch_image(entry, tmp_path / "out", refresh=True)  # --refresh resolves the tag again
    assert entry["digest"] == layout.manifests["amd64"]["digest"]


def test_a_blob_whose_bytes_do_not_match_its_digest_is_refused(pushed, tmp_path):
    running, layout, ref = pushed
    layer = layout.manifests["amd64"]["layers"][1]
    stored = running.blob_file(layer)
    data = bytearray(stored.read_bytes())
    data[1000] ^= 0xFF  # same size, other bytes
    stored.write_bytes(bytes(data))
    entry = _entry(ref)
    with pytest.raises(BundleError, match="sha256 of the download is .*expected " + layer.split(":")[1]):
        fetch_image(entry, tmp_path / "out")
    blob = tmp_path / "out" / BLOB_DIR / layer.split(":")[1]
    assert not blob.exists() and not part_path(blob).exists(), "bytes that failed the check are not kept"
    assert not (tmp_path / "out/images/app.tar").exists() and "digest" not in entry


def test_a_manifest_whose_bytes_do_not_match_its_digest_is_refused(pushed, tmp_path):
    running, layout, ref = pushed
    manifest = running.blob_file(layout.manifests["amd64"]["digest"])
    manifest.write_bytes(manifest.read_bytes() + b" ")  # still JSON, other bytes
    with pytest.raises(BundleError, match="sent a manifest whose sha256 is"):
        fetch_image(_entry(ref), tmp_path / "out")


def test_a_truncated_blob_is_named_and_nothing_is_written(pushed, tmp_path):
    running, layout, ref = pushed
    layer = layout.manifests["amd64"]["layers"][1]
    stored = running.blob_file(layer)
    stored.write_bytes(stored.read_bytes()[:50_000])
    with pytest.raises(BundleError, match="truncated"):
        fetch_image(_entry(ref), tmp_path / "out")
    assert not (tmp_path / "out/images/app.tar").exists()


def test_a_partial_blob_is_resumed_from_where_it_stopped(pushed, tmp_path):
    running, layout, ref = pushed
    layer = layout.manifests["amd64"]["layers"][1]
    whole = running.blob_file(layer).read_bytes()
    part = part_path(tmp_path / "out" / BLOB_DIR / layer.split(":")[1])
    part.parent.mkdir(parents=True)
    part.write_bytes(whole[:120_000])  # what an interrupted run left
    entry = _entry(ref)
    fetch_image(entry, tmp_path / "out")
    assert verify_archive(tmp_path / "out/images/app.tar")[ref] == layout.manifests["amd64"]["digest"]

    # The kept bytes really are used: a part with wrong bytes fails the digest (a fresh download would not).
    part.write_bytes(b"\0" * 120_000)
    with pytest.raises(BundleError, match="sha256 of the download is"):
        fetch_image(_entry(ref), tmp_path / "out")
    assert not part.exists()


@pytest.mark.parametrize("anonymous", [False, True], ids=["login", "anonymous"])
def test_a_registry_that_needs_a_token(tmp_path, env, anonymous):
    tokens = TokenService(tmp_path, anonymous=anonymous)
    try:
        with registry(tmp_path, token_auth=tokens.registry_config()) as running:
            env.setenv("JHUB_INSECURE_REGISTRIES", running.host)
            running.creds = f"{tokens.user}:{tokens.password}"
            layout = build_layout(tmp_path / "layout")
            ref = running.push(layout, "team/app")
            tokens.requests.clear()
            if not anonymous:
                with pytest.raises(BundleError, match="token service .* answered HTTP 401 .*may need a login"):
                    fetch_image(_entry(ref), tmp_path / "out", registry=Registry())
                config = tmp_path / "home/.docker/config.json"
                config.parent.mkdir(parents=True)
                auth = base64.b64encode(f"{tokens.user}:{tokens.password}".encode()).decode()
                config.write_text(json.dumps({"auths": {running.host: {"auth": auth}}}))
            entry = _entry(ref)
            fetch_image(entry, tmp_path / "out", registry=Registry())
    finally:
        tokens.close()
    assert entry["digest"] == layout.manifests["amd64"]["digest"]
    used = tokens.requests[-1]
    assert used["query"] == {"service": tokens.service, "scope": "repository:team/app:pull"}
    assert used["user"] == (None if anonymous else tokens.user)


def test_a_registry_with_basic_auth_takes_the_login_from_registry_auth_file(tmp_path, env):
    with registry(tmp_path, auth=htpasswd(tmp_path, "site", "pa55word")) as running:
        env.setenv("JHUB_INSECURE_REGISTRIES", running.host)
        running.creds = "site:pa55word"
        layout = build_layout(tmp_path / "layout")
        ref = running.push(layout, "team/app")
        with pytest.raises(BundleError, match="the registry asks for a login; add it to ~/.docker/config.json"):
            fetch_image(_entry(ref), tmp_path / "out", registry=Registry())
        auth_file = tmp_path / "auth.json"
        login = base64.b64encode(b"site:pa55word").decode()
        auth_file.write_text(json.dumps({"auths": {running.host: {"auth": login}}}))
        env.setenv("REGISTRY_AUTH_FILE", str(auth_file))
        entry = _entry(ref)
        fetch_image(entry, tmp_path / "out", registry=Registry())
    assert entry["digest"] == layout.manifests["amd64"]["digest"]


def test_a_registry_that_redirects_to_another_that_asks_for_its_own_token(tmp_path, env):
    """registry.k8s.io's shape: the named registry redirects every request to a regional one, which
    challenges the client itself. Each host gets only its own token."""
    tokens = TokenService(tmp_path, anonymous=True)
    seen_auth = []
    try:
        with registry(tmp_path, token_auth=tokens.registry_config()) as running:
            running.creds = f"{tokens.user}:{tokens.password}"
            layout = build_layout(tmp_path / "layout")
            running.push(layout, "team/app")
            tokens.requests.clear()  # skopeo's push

            class Front(BaseHTTPRequestHandler):
                def do_GET(self):  # noqa: N802
                    seen_auth.append(self.headers.get("Authorization"))
                    self.send_response(307)
                    self.send_header("Location", f"http://{running.host}{self.path}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()

                def log_message(self, *args):
                    pass

            front = ThreadingHTTPServer(("127.0.0.1", 0), Front)
            threading.Thread(target=front.serve_forever, daemon=True).start()
            front_host = f"127.0.0.1:{front.server_address[1]}"
            env.setenv("JHUB_INSECURE_REGISTRIES", f"{front_host},{running.host}")
            entry = _entry(f"{front_host}/team/app:1.0")
            try:
                fetch_image(entry, tmp_path / "out", registry=Registry())
            finally:
                front.shutdown()
                front.server_close()
    finally:
        tokens.close()
    assert entry["digest"] == layout.manifests["amd64"]["digest"]
    assert len(seen_auth) >= 4 and seen_auth == [None] * len(seen_auth), "no token went to the redirecting host"
    assert [r["user"] for r in tokens.requests] == [None], "one anonymous token, reused for every request"


@pytest.mark.parametrize("ref, parts", [
    ("docker.io/calico/node:v3.28.1", ("docker.io", "registry-1.docker.io", "calico/node", "v3.28.1", None)),
    ("busybox", ("docker.io", "registry-1.docker.io", "library/busybox", "latest", None)),
    ("registry.k8s.io/pause:3.10", ("registry.k8s.io", "registry.k8s.io", "pause", "3.10", None)),
    ("127.0.0.1:5000/team/app@sha256:" + "a" * 64,
     ("127.0.0.1:5000", "127.0.0.1:5000", "team/app", None, "sha256:" + "a" * 64)),
    ("localhost/jhub-portal:dev", ("localhost", "localhost", "jhub-portal", "dev", None)),
])
def test_image_references_name_the_registry_repository_and_tag(ref, parts):
    from scripts.bundler.oci import parse_reference

    parsed = parse_reference(ref)
    assert (parsed.registry, parsed.api_host, parsed.repository, parsed.tag, parsed.digest) == parts


def test_credentials_come_from_the_docker_config_formats(tmp_path):
    from scripts.bundler.auth import credentials_for

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub-user:hub:pass").decode()},
        "quay.io": {"username": "robot", "password": "token"}}}))
    assert credentials_for("docker.io", [config]) == ("hub-user", "hub:pass")
    assert credentials_for("quay.io", [config]) == ("robot", "token")
    assert credentials_for("ghcr.io", [config]) is None
    config.write_text(json.dumps({"auths": {"ghcr.io": {"auth": "%%%"}}}))
    with pytest.raises(BundleError, match=r"auths\['ghcr.io'\].auth is not base64"):
        credentials_for("ghcr.io", [config])
