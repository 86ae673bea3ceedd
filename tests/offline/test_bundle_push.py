"""Pushing a built image's tarball to a real distribution registry on 127.0.0.1 (Debian's docker-registry)
with the bundle's own OCI client (scripts/bundler/push.py): the registry then serves the tarball's manifest,
byte for byte, at the digest the program pins, anonymous, with a basic login, with a token service, and over
HTTPS with the site's CA; failures name the registry reference and the image."""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess

import pytest

from scripts.bundler import BundleError
from scripts.bundler.build import archive_from_layout
from scripts.bundler.push import push_archive, target_reference
from tests.support.registry import SKOPEO, TokenService, build_layout, free_port, htpasswd, registry

REF = "localhost/jhub-notebook-cpu:0.1.0"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no credentials of this machine's user
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "JHUB_PUSH_USERNAME", "JHUB_PUSH_PASSWORD",
                 "JHUB_REGISTRY_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def tarball(tmp_path):
    """What `scripts/bundle.py --build` leaves: the built OCI layout written as the bundle's tarball."""
    layout = build_layout(tmp_path / "layout", tag="0.1.0", architectures=("amd64",))
    path = tmp_path / "images" / "jhub-notebook-cpu-0.1.0.tar"
    digest = archive_from_layout(layout.path, path, [REF])
    assert digest == layout.manifests["amd64"]["digest"]
    return path, digest, layout


def served(host: str, repository: str, *args: str) -> tuple[str, bytes]:
    done = subprocess.run([SKOPEO, "inspect", "--raw", *args, f"docker://{host}/{repository}"],
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return "sha256:" + hashlib.sha256(done.stdout).hexdigest(), done.stdout


def test_the_target_name_keeps_the_images_name_and_tag_under_the_registry_project():
    assert target_reference(REF, "harbor.local/jhub") == "harbor.local/jhub/jhub-notebook-cpu:0.1.0"
    assert (target_reference("localhost/jhub-portal:0.1.0", "10.0.0.5:5000/a/b/")
            == "10.0.0.5:5000/a/b/jhub-portal:0.1.0")


def test_a_pushed_image_is_served_at_the_tarballs_digest(tmp_path, env, tarball):
    path, digest, layout = tarball
    with registry(tmp_path) as running:
        env.setenv("JHUB_INSECURE_REGISTRIES", running.host)
        assert push_archive(path, REF, f"{running.host}/jhub") == digest
        by_tag, manifest = served(running.host, "jhub/jhub-notebook-cpu:0.1.0", "--tls-verify=false")
        assert by_tag == digest, "the manifest's own bytes: the digest the lock and the pods name"
        by_digest, _ = served(running.host, f"jhub/jhub-notebook-cpu@{digest}", "--tls-verify=false")
        assert by_digest == digest
        blobs = [json.loads(manifest)["config"]["digest"]] + [x["digest"] for x in json.loads(manifest)["layers"]]
        for blob in blobs:
            assert running.blob_file(blob).is_file()
        # again: every blob is there, only the manifest is put (the same digest)
        assert push_archive(path, REF, f"{running.host}/jhub") == digest


def test_a_login_is_used_and_a_wrong_one_names_the_registry_and_the_image(tmp_path, env, tarball):
    path, digest, _ = tarball
    with registry(tmp_path, auth=htpasswd(tmp_path, "robot", "push-s3cret")) as running:
        env.setenv("JHUB_INSECURE_REGISTRIES", running.host)
        env.setenv("JHUB_PUSH_USERNAME", "robot")
        env.setenv("JHUB_PUSH_PASSWORD", "wrong-password")
        with pytest.raises(BundleError) as refused:
            push_archive(path, REF, f"{running.host}/jhub")
        message = str(refused.value)
        assert f"push of {REF} to {running.host}/jhub/jhub-notebook-cpu:0.1.0" in message
        assert "HTTP 401" in message and "wrong-password" not in message
        env.setenv("JHUB_PUSH_PASSWORD", "push-s3cret")
        assert push_archive(path, REF, f"{running.host}/jhub") == digest
        assert served(running.host, "jhub/jhub-notebook-cpu:0.1.0", "--tls-verify=false",
                      "--creds", "robot:push-s3cret")[0] == digest


def test_a_token_service_grants_the_push_scope(tmp_path, env, tarball):
    path, digest, _ = tarball
    tokens = TokenService(tmp_path, user="robot", password="push-s3cret")
    try:
        with registry(tmp_path, token_auth=tokens.registry_config()) as running:
            env.setenv("JHUB_INSECURE_REGISTRIES", running.host)
            env.setenv("JHUB_PUSH_USERNAME", "robot")
            env.setenv("JHUB_PUSH_PASSWORD", "push-s3cret")
            assert push_archive(path, REF, f"{running.host}/jhub") == digest
    finally:
        tokens.close()
    scopes = [r["query"].get("scope", "").rsplit(":", 1) for r in tokens.requests]
    assert ["repository:jhub/jhub-notebook-cpu", {"pull", "push"}] in [[s[0], set(s[1].split(","))] for s in scopes]
    assert all(r["user"] == "robot" for r in tokens.requests)


def _certificates(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jhub test site CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    paths = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def test_over_https_the_sites_ca_is_trusted_and_without_it_the_push_fails_by_name(tmp_path, env, tarball):
    path, digest, _ = tarball
    certs = _certificates(tmp_path)
    with registry(tmp_path, tls={"certificate": str(certs["cert"]), "key": str(certs["key"])}) as running:
        with pytest.raises(BundleError) as untrusted:
            push_archive(path, REF, f"{running.host}/jhub")
        assert f"push of {REF} to {running.host}/jhub/jhub-notebook-cpu:0.1.0" in str(untrusted.value)
        assert "CERTIFICATE_VERIFY_FAILED" in str(untrusted.value)
        env.setenv("JHUB_REGISTRY_CA_FILE", str(certs["ca"]))
        assert push_archive(path, REF, f"{running.host}/jhub") == digest
        assert served(running.host, "jhub/jhub-notebook-cpu:0.1.0", "--cert-dir", str(tmp_path / "skopeo-certs"),
                      "--tls-verify=false")[0] == digest


def test_an_unreachable_registry_and_a_wrong_image_name_are_named(tmp_path, env, tarball):
    path, _, _ = tarball
    port = free_port()
    with pytest.raises(BundleError) as unreachable:
        push_archive(path, REF, f"127.0.0.1:{port}/jhub")
    assert f"push of {REF} to 127.0.0.1:{port}/jhub/jhub-notebook-cpu:0.1.0: cannot reach" in str(unreachable.value)
    with pytest.raises(BundleError) as other:
        push_archive(path, "localhost/jhub-portal:0.1.0", f"127.0.0.1:{port}/jhub")
    assert "push of localhost/jhub-portal:0.1.0" in str(other.value) and REF in str(other.value)


def _bundled(tmp_path, tarball):
    """A bundle holding the built image, recorded in its lock as scripts/bundle.py leaves it."""
    import yaml

    path, digest, _ = tarball
    images_dir, charts_dir = path.parent.parent, tmp_path / "charts"
    charts_dir.mkdir()
    (charts_dir / "charts.lock").write_text("version: 1\ncharts: []\n")
    entry = {"ref": REF, "build": {"context": "images/notebook", "target": "cpu"},
             "file": "images/" + path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
             "digest": digest, "features": []}
    (images_dir / "images.lock").write_text(yaml.safe_dump({"version": 1, "snaps": [], "images": [entry]}))
    return images_dir, charts_dir, entry


def test_the_bundle_step_pushes_its_built_images_and_one_bundled_image(tmp_path, env, tarball, capsys):
    from scripts import bundle

    images_dir, charts_dir, entry = _bundled(tmp_path, tarball)
    with registry(tmp_path) as running:
        env.setenv("JHUB_INSECURE_REGISTRIES", running.host)
        target = f"{running.host}/site/jhub"
        # after bundling (here: all intact), every built image goes to the registry
        assert bundle.main(["--dir", str(images_dir), "--charts-dir", str(charts_dir), "--push", target]) == 0
        assert f"= {target}/jhub-notebook-cpu:0.1.0@{entry['digest']}" in capsys.readouterr().err
        assert served(running.host, "site/jhub/jhub-notebook-cpu:0.1.0", "--tls-verify=false")[0] == entry["digest"]
        # what `pulumi up` runs with a mirror: one bundled image, stdout "<sha256> <digest>" only
        assert bundle.main(["--dir", str(images_dir), "--image", REF, "--push", f"{running.host}/other"]) == 0
        assert capsys.readouterr().out == f"{entry['sha256']} {entry['digest']}\n"
        assert served(running.host, "other/jhub-notebook-cpu:0.1.0", "--tls-verify=false")[0] == entry["digest"]
        # a tarball that is not the lock's is not pushed
        (images_dir / entry["file"]).write_bytes(b"changed")
        assert bundle.main(["--dir", str(images_dir), "--image", REF, "--push", f"{running.host}/third"]) == 1
        err = capsys.readouterr().err
        assert f"image {REF}:" in err and "not the lock's sha256" in err


def test_a_bad_push_registry_is_refused_before_anything(tmp_path, capsys):
    from scripts import bundle

    with pytest.raises(SystemExit):
        bundle.main(["--dir", str(tmp_path), "--image", REF, "--push", "https://harbor.local/jhub"])
    assert 'such as "harbor.local/jhub", got "https://harbor.local/jhub"' in capsys.readouterr().err
