"""images.sh: sha256 check, import only what changed (by the lock's manifest digest where it has one),
tag <repository>@<digest>, pin every name."""

from hostkit import image_tarball, oci_tarball

IMAGE_DIR = "/var/lib/jhub/bundle/images"
PIN = "io.cri-containerd.pinned=pinned"


def tarball(host, name, refs, payload=b"layer", platforms=()):
    return image_tarball(host, f"{IMAGE_DIR}/{name}", refs, payload, platforms)


def scene(host):
    host.install_microk8s()
    hub = tarball(host, "hub.tar", ["quay.io/jupyterhub/k8s-hub:4.1.0"])
    nb = tarball(host, "notebook.tar", ["docker.io/myorg/pytorch-jhub:24.10", "docker.io/myorg/pytorch-jhub:latest"])
    lock = (f"hub.tar {hub} quay.io/jupyterhub/k8s-hub:4.1.0\n"
            f"notebook.tar {nb} docker.io/myorg/pytorch-jhub:24.10,docker.io/myorg/pytorch-jhub:latest\n")
    return {"JHUB_IMAGE_DIR": IMAGE_DIR, "JHUB_IMAGES": lock}


def test_import_and_pin_then_second_run_imports_nothing(host):
    env = scene(host)
    res = host.run("images", env=env)
    assert res.stdout == ""
    imports = [c for c in res.lines() if " images import " in c]
    assert imports == [f"microk8s ctr --namespace k8s.io images import --platform linux/amd64 {host.p(IMAGE_DIR)}/hub.tar",
                       f"microk8s ctr --namespace k8s.io images import --platform linux/amd64 {host.p(IMAGE_DIR)}/notebook.tar"]
    labels = sorted(c for c in res.lines() if " images label " in c)
    assert labels == [f"microk8s ctr --namespace k8s.io images label {ref} {PIN}" for ref in
                      ("docker.io/myorg/pytorch-jhub:24.10", "docker.io/myorg/pytorch-jhub:latest",
                       "quay.io/jupyterhub/k8s-hub:4.1.0")]
    images = host.state("microk8s")["images"]
    assert all(images[r]["io.cri-containerd.pinned"] == "pinned" for r in
               ("docker.io/myorg/pytorch-jhub:24.10", "docker.io/myorg/pytorch-jhub:latest",
                "quay.io/jupyterhub/k8s-hub:4.1.0"))
    assert host.read("/var/lib/jhub/images/hub.tar.sha256").strip() == env["JHUB_IMAGES"].split()[1]

    before = host.snapshot()
    again = host.run("images", env=env)
    assert not again.has("microk8s ctr --namespace k8s.io images import")
    assert not again.has("microk8s ctr --namespace k8s.io images label")
    assert host.snapshot() == before
    assert "hub.tar: already imported" in again.stderr


def test_only_the_changed_tarball_is_imported_again(host):
    env = scene(host)
    host.run("images", env=env)
    new_nb = tarball(host, "notebook.tar", ["docker.io/myorg/pytorch-jhub:24.10", "docker.io/myorg/pytorch-jhub:latest"],
                     payload=b"a newer layer")
    lines = env["JHUB_IMAGES"].splitlines()
    lines[1] = f"notebook.tar {new_nb} " + lines[1].split()[2]
    res = host.run("images", env={**env, "JHUB_IMAGES": "\n".join(lines)})
    assert [c for c in res.lines() if " images import " in c] == [
        f"microk8s ctr --namespace k8s.io images import --platform linux/amd64 {host.p(IMAGE_DIR)}/notebook.tar"]


def test_sha256_mismatch_names_the_file_and_imports_nothing(host):
    env = scene(host)
    host.p(f"{IMAGE_DIR}/notebook.tar").write_bytes(b"truncated copy")
    res = host.run("images", env=env, fails=True)
    assert "notebook.tar: sha256 is " in res.stderr and "but the lock says" in res.stderr
    assert "nothing was imported" in res.stderr
    assert not res.has("microk8s ctr")  # not even hub.tar, which was fine
    host.p(f"{IMAGE_DIR}/hub.tar").unlink()
    res = host.run("images", env=env, fails=True)
    assert "hub.tar: missing (expected at /var/lib/jhub/bundle/images/hub.tar)" in res.stderr


def test_image_deleted_from_containerd_is_imported_again(host):
    env = scene(host)
    host.run("images", env=env)
    images = host.state("microk8s")["images"]
    del images["quay.io/jupyterhub/k8s-hub:4.1.0"]
    host.set_state("microk8s", images=images)
    res = host.run("images", env=env)
    assert [c for c in res.lines() if " images import " in c] == [
        f"microk8s ctr --namespace k8s.io images import --platform linux/amd64 {host.p(IMAGE_DIR)}/hub.tar"]
    assert res.count("microk8s ctr --namespace k8s.io images label") == 1
    assert "quay.io/jupyterhub/k8s-hub:4.1.0 is gone from containerd, importing again" in res.stderr


def test_ref_not_in_the_tarball_is_a_clear_error(host):
    env = scene(host)
    env["JHUB_IMAGES"] = env["JHUB_IMAGES"].replace("k8s-hub:4.1.0", "k8s-hub:9.9.9")
    res = host.run("images", env=env, fails=True)
    assert ("hub.tar was imported but containerd has no image quay.io/jupyterhub/k8s-hub:9.9.9; "
            "the lock lists a ref this tarball does not contain") in res.stderr
    assert "the import was undone; removed what it added: quay.io/jupyterhub/k8s-hub:4.1.0" in res.stderr
    assert "quay.io/jupyterhub/k8s-hub:4.1.0" not in host.state("microk8s")["images"], "nothing of it stays"


def test_bad_lock_lines_are_refused(host):
    env = scene(host)
    for lock, message in [("../etc/passwd " + "0" * 64 + " a:b", "must be a plain file name"),
                          ("hub.tar abc a:b", "'abc' is not a sha256"),
                          ("hub.tar " + "0" * 64, "must be 'file sha256 ref[,ref...] [digest]'"),
                          ("", "JHUB_IMAGES is empty")]:
        res = host.run("images", env={**env, "JHUB_IMAGES": lock}, fails=True)
        assert message in res.stderr
        assert not res.has("microk8s")


def test_a_file_corrupted_after_a_good_import_is_caught(host):
    env = scene(host)
    host.run("images", env=env)
    f = host.p(f"{IMAGE_DIR}/hub.tar")
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF  # same size, new content
    f.unlink()
    f.write_bytes(bytes(data))
    res = host.run("images", env=env, fails=True)
    assert "hub.tar: sha256 is " in res.stderr


def test_a_tarball_whose_index_names_other_platforms_imports_for_this_one(host):
    """`docker save` under the containerd image store names every platform in index.json but holds one
    platform's blobs: the import names this host's platform, so ctr does not look for the others."""
    import platform

    assert platform.machine() == "x86_64", "the expected platform below is this test machine's"
    host.install_microk8s()
    sha = tarball(host, "multi.tar", ["docker.io/library/nginx:1.27.0"],
                  platforms=("linux/amd64", "linux/arm64", "linux/s390x"))
    res = host.run("images", env={"JHUB_IMAGE_DIR": IMAGE_DIR,
                                  "JHUB_IMAGES": f"multi.tar {sha} docker.io/library/nginx:1.27.0\n"})
    assert [c for c in res.lines() if " images import " in c] == [
        f"microk8s ctr --namespace k8s.io images import --platform linux/amd64 {host.p(IMAGE_DIR)}/multi.tar"]
    assert "docker.io/library/nginx:1.27.0" in host.state("microk8s")["images"]


def test_an_unknown_machine_is_refused_before_any_import(host):
    host.install_microk8s()
    sha = tarball(host, "hub.tar", ["quay.io/jupyterhub/k8s-hub:4.1.0"])
    fake_bin = host.fake / "bin"
    fake_bin.mkdir()
    (fake_bin / "uname").write_text('#!/bin/sh\n[ "$1" = -m ] && { echo pdp11; exit 0; }\nexec /usr/bin/uname "$@"\n')
    (fake_bin / "uname").chmod(0o755)
    import os

    from hostkit import FAKES

    res = host.run("images", env={"JHUB_IMAGE_DIR": IMAGE_DIR, "JHUB_IMAGES": f"hub.tar {sha} quay.io/jupyterhub/k8s-hub:4.1.0\n",
                                  "PATH": f"{fake_bin}:{FAKES}:{os.environ['PATH']}"}, fails=True)
    assert "machine pdp11" in res.stderr and not res.has("microk8s ctr --namespace k8s.io images import")


def test_a_long_import_reports_progress_so_idle_timeouts_do_not_cut_it_off(host):
    """pulumi-command sends no keepalives: a silent multi-minute import could lose its SSH session to an
    idle timeout. images.sh logs a line every JHUB_PROGRESS_INTERVAL seconds while it runs."""
    import time

    env = scene(host)
    host.set_state("microk8s", import_seconds=2.5)
    start = time.monotonic()
    res = host.run("images", env={**env, "JHUB_PROGRESS_INTERVAL": "1"})
    assert time.monotonic() - start >= 5
    progress = [line for line in res.stderr.splitlines() if "still running after" in line]
    assert any(line.startswith("jhub[images]: importing hub.tar: still running after ") for line in progress)
    assert any("importing notebook.tar: still running after " in line for line in progress)
    assert len(progress) >= 4
    assert "hub.tar: imported" in res.stderr and res.stdout == ""


def test_a_failing_import_still_fails_with_progress_reporting(host):
    env = scene(host)
    host.set_state("microk8s", containerd_down=False)
    host.write(f"{IMAGE_DIR}/hub.tar", "not a tarball")
    lines = env["JHUB_IMAGES"].splitlines()
    import hashlib

    lines[0] = f"hub.tar {hashlib.sha256(b'not a tarball').hexdigest()} quay.io/jupyterhub/k8s-hub:4.1.0"
    res = host.run("images", env={**env, "JHUB_IMAGES": "\n".join(lines), "JHUB_PROGRESS_INTERVAL": "1"}, fails=True)
    assert "importing hub.tar on" in res.stderr and "failed or took over" in res.stderr


# -- tarballs the bundle writes (OCI layout, names by annotation), locked by manifest digest ------------

HUB, HUB_AT = "quay.io/jupyterhub/k8s-hub:4.4.0", "quay.io/jupyterhub/k8s-hub@"
LOCAL = "registry.lab.local:5000/team/app:1.0"  # a registry with a port: the tag, not the port, goes


def digest_scene(host, payload=b"layer"):
    host.install_microk8s()
    hub_sha, hub_digest = oci_tarball(host, f"{IMAGE_DIR}/hub.tar", [HUB], payload)
    app_sha, app_digest = oci_tarball(host, f"{IMAGE_DIR}/app.tar", [LOCAL, "example.org/team/app:1.0"], b"app")
    lock = (f"hub.tar {hub_sha} {HUB} {hub_digest}\n"
            f"app.tar {app_sha} {LOCAL},example.org/team/app:1.0 {app_digest}\n")
    return {"JHUB_IMAGE_DIR": IMAGE_DIR, "JHUB_IMAGES": lock}, hub_digest, app_digest


def test_a_digest_locked_tarball_is_imported_tagged_by_digest_and_pinned_then_nothing_changes(host):
    env, hub_digest, app_digest = digest_scene(host)
    res = host.run("images", env=env)
    assert [c for c in res.lines() if " images import " in c] == [
        f"microk8s ctr --namespace k8s.io images import --platform linux/amd64 {host.p(IMAGE_DIR)}/{f}"
        for f in ("hub.tar", "app.tar")]
    tags = [c for c in res.lines() if " images tag " in c]
    assert tags == [f"microk8s ctr --namespace k8s.io images tag --force {HUB} {HUB_AT}{hub_digest}",
                    f"microk8s ctr --namespace k8s.io images tag --force {LOCAL} registry.lab.local:5000/team/app@{app_digest}",
                    f"microk8s ctr --namespace k8s.io images tag --force {LOCAL} example.org/team/app@{app_digest}"]
    state = host.state("microk8s")
    names = {HUB: hub_digest, HUB_AT + hub_digest: hub_digest, LOCAL: app_digest,
             "example.org/team/app:1.0": app_digest, f"registry.lab.local:5000/team/app@{app_digest}": app_digest,
             f"example.org/team/app@{app_digest}": app_digest}
    assert {n: state["digests"][n] for n in names} == names
    assert all(state["images"][n]["io.cri-containerd.pinned"] == "pinned" for n in names)

    before, fake_before = host.snapshot(), host.state("microk8s")
    again = host.run("images", env=env)
    assert [c.line for c in again.calls if c.argv[4:5] != ["ls"]] == [], "a second run only lists"
    assert host.snapshot() == before and host.state("microk8s") == fake_before
    assert f"hub.tar: already imported (digest {hub_digest[:19]}), skipping" in again.stderr


def test_a_name_already_at_the_locked_digest_is_not_imported_even_without_a_record(host):
    """The image is what the lock names (imported by hand, or jhub's record was lost): no multi-GB import."""
    env, hub_digest, app_digest = digest_scene(host)
    host.run("images", env=env)
    for f in ("hub.tar", "app.tar"):
        host.p(f"/var/lib/jhub/images/{f}.sha256").unlink()
    res = host.run("images", env=env)
    assert not res.has("microk8s ctr --namespace k8s.io images import")


def test_a_lost_digest_name_is_tagged_again_without_an_import(host):
    env, hub_digest, _ = digest_scene(host)
    host.run("images", env=env)
    state = host.state("microk8s")
    del state["images"][HUB_AT + hub_digest]
    host.set_state("microk8s", images=state["images"])
    res = host.run("images", env=env)
    assert not res.has("microk8s ctr --namespace k8s.io images import")
    assert [c for c in res.lines() if " images tag " in c or " images label " in c] == [
        f"microk8s ctr --namespace k8s.io images tag --force {HUB} {HUB_AT}{hub_digest}"], "the tag copies the pin"
    assert host.state("microk8s")["images"][HUB_AT + hub_digest]["io.cri-containerd.pinned"] == "pinned"


def test_a_ref_at_another_digest_is_imported_and_its_digest_name_tagged(host):
    """An upgrade: the lock names a new manifest for the same tag."""
    env, hub_digest, _ = digest_scene(host)
    host.run("images", env=env)
    new_sha, new_digest = oci_tarball(host, f"{IMAGE_DIR}/hub.tar", [HUB], b"a newer layer")
    lines = env["JHUB_IMAGES"].splitlines()
    lines[0] = f"hub.tar {new_sha} {HUB} {new_digest}"
    res = host.run("images", env={**env, "JHUB_IMAGES": "\n".join(lines)})
    assert [c for c in res.lines() if " images import " in c] == [
        f"microk8s ctr --namespace k8s.io images import --platform linux/amd64 {host.p(IMAGE_DIR)}/hub.tar"]
    assert f"hub.tar: {HUB} is at {hub_digest[:19]}, the lock says {new_digest[:19]}, importing again" in res.stderr
    assert [c for c in res.lines() if " images tag " in c] == [
        f"microk8s ctr --namespace k8s.io images tag --force {HUB} {HUB_AT}{new_digest}"]
    state = host.state("microk8s")
    assert state["digests"][HUB] == new_digest
    assert state["images"][HUB_AT + new_digest]["io.cri-containerd.pinned"] == "pinned"
    assert host.read("/var/lib/jhub/images/hub.tar.sha256").strip() == new_sha


def test_a_tarball_holding_another_manifest_than_the_lock_is_a_clear_error_and_nothing_is_pinned(host):
    env, hub_digest, _ = digest_scene(host)
    wrong = "sha256:" + "e" * 64
    env["JHUB_IMAGES"] = env["JHUB_IMAGES"].replace(hub_digest, wrong)
    res = host.run("images", env=env, fails=True)
    assert (f"hub.tar was imported on {res.calls[0].env.get('FAKE_NODENAME') or __import__('os').uname().nodename}, "
            f"but containerd has {HUB} at {hub_digest} while the lock says {wrong}") in res.stderr
    assert "bundle it again" in res.stderr and "Nothing was pinned" in res.stderr
    assert f"the import was undone; removed what it added: {HUB}" in res.stderr
    assert not res.has("microk8s ctr --namespace k8s.io images label")
    assert not res.has("microk8s ctr --namespace k8s.io images tag")
    assert res.has(f"microk8s ctr --namespace k8s.io images rm {HUB}")
    assert HUB not in host.state("microk8s")["images"], "the image the lock does not name is gone"
    assert not host.p("/var/lib/jhub/images/hub.tar.sha256").exists(), "so the next run looks again"
    again = host.run("images", env=env, fails=True)
    assert again.has("microk8s ctr --namespace k8s.io images import")


def upgrade_to_a_wrong_tarball(host, env):
    """The lock moves hub.tar to a new manifest, but the tarball on the node holds another one."""
    new_sha, new_digest = oci_tarball(host, f"{IMAGE_DIR}/hub.tar", [HUB], b"not the layer the lock names")
    wrong = "sha256:" + "e" * 64
    lines = env["JHUB_IMAGES"].splitlines()
    lines[0] = f"hub.tar {new_sha} {HUB} {wrong}"
    return {**env, "JHUB_IMAGES": "\n".join(lines)}, new_sha, new_digest, wrong


def test_a_wrong_import_over_a_pinned_image_puts_the_old_one_back_under_its_name(host):
    """containerd's import moves a name it finds to the tarball's manifest and keeps its labels, the pin
    among them: without the undo, the wrong image would stay under the name, pinned."""
    env, hub_digest, _ = digest_scene(host)
    host.run("images", env=env)
    before = host.state("microk8s")
    bad, _, new_digest, wrong = upgrade_to_a_wrong_tarball(host, env)
    res = host.run("images", env=bad, fails=True)
    assert f"containerd has {HUB} at {new_digest} while the lock says {wrong}" in res.stderr
    assert f"the import was undone; put back at the digest they had: {HUB}" in res.stderr
    assert [c for c in res.lines() if " images tag " in c or " images rm " in c or " images label " in c] == [
        f"microk8s ctr --namespace k8s.io images tag --force {HUB_AT}{hub_digest} {HUB}"], \
        "the digest name jhub tagged keeps the old image"
    after = host.state("microk8s")
    assert after["digests"][HUB] == hub_digest and after["images"][HUB]["io.cri-containerd.pinned"] == "pinned"
    assert new_digest not in after["digests"].values()
    assert after == before, "containerd is as it was before the run"

    # the right tarball comes: imported once, then a second run changes nothing
    good_sha, good_digest = oci_tarball(host, f"{IMAGE_DIR}/hub.tar", [HUB], b"the new layer")
    lines = env["JHUB_IMAGES"].splitlines()
    lines[0] = f"hub.tar {good_sha} {HUB} {good_digest}"
    good = {**env, "JHUB_IMAGES": "\n".join(lines)}
    host.run("images", env=good)
    assert host.state("microk8s")["digests"][HUB] == good_digest
    state, files = host.state("microk8s"), host.snapshot()
    again = host.run("images", env=good)
    assert [c.line for c in again.calls if c.argv[4:5] != ["ls"]] == []
    assert host.state("microk8s") == state and host.snapshot() == files


def test_a_wrong_import_over_a_name_no_other_name_keeps_is_undone_through_a_name_kept_for_it(host):
    """No <repository>@<digest> holds the old image (imported by hand, or that name was removed): one is
    tagged before the import, the name is put back from it, and it goes again."""
    env, hub_digest, _ = digest_scene(host)
    host.run("images", env=env)
    state = host.state("microk8s")
    del state["images"][HUB_AT + hub_digest], state["digests"][HUB_AT + hub_digest]
    host.set_state("microk8s", images=state["images"], digests=state["digests"])
    before = host.state("microk8s")
    bad, _, new_digest, _ = upgrade_to_a_wrong_tarball(host, env)
    res = host.run("images", env=bad, fails=True)
    assert [c for c in res.lines() if " images " in c and " ls" not in c] == [
        f"microk8s ctr --namespace k8s.io images tag {HUB} {HUB_AT}{hub_digest}",
        f"microk8s ctr --namespace k8s.io images import --platform linux/amd64 {host.p(IMAGE_DIR)}/hub.tar",
        f"microk8s ctr --namespace k8s.io images tag --force {HUB_AT}{hub_digest} {HUB}",
        f"microk8s ctr --namespace k8s.io images rm {HUB_AT}{hub_digest}"]
    assert host.state("microk8s") == before


def test_a_failed_import_that_named_images_is_undone(host):
    """An import cut off by its timeout may have named some images already: they go."""
    env, _, _ = digest_scene(host)
    before = host.state("microk8s")
    host.set_state("microk8s", import_hangs_after=30)
    res = host.run("images", env={**env, "JHUB_IMPORT_TIMEOUT": "2"}, fails=True)
    assert "importing hub.tar on" in res.stderr and "failed or took over 2s" in res.stderr
    assert f"the import was undone; removed what it added: {HUB}" in res.stderr
    assert host.state("microk8s")["images"] == before["images"]


def test_a_bad_digest_field_is_refused(host):
    env, _, _ = digest_scene(host)
    line = env["JHUB_IMAGES"].splitlines()[0].rsplit(" ", 1)[0]
    for digest in ("sha256:abc", "md5:" + "0" * 64, "SHA256:" + "0" * 64):
        res = host.run("images", env={**env, "JHUB_IMAGES": f"{line} {digest}"}, fails=True)
        assert f"JHUB_IMAGES line 1: '{digest}' is not a manifest digest" in res.stderr
        assert not res.has("microk8s")
    host.run("images", env={**env, "JHUB_IMAGES": f"{line} -"})  # "-": no digest in the lock


def test_the_fake_ctr_names_images_as_containerd_does(host):
    """The fake follows containerd's importer: io.containerd.image.name first, a bare ref.name tag under
    ctr's import-<date> prefix, only the platform asked for (the other's blobs need not be there)."""
    import io
    import json
    import tarfile
    import time

    host.install_microk8s()
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    amd64, arm64 = {"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64"}
    index = {"manifests": [
        {"digest": d1, "platform": amd64,
         "annotations": {"io.containerd.image.name": "docker.io/x/y:1", "org.opencontainers.image.ref.name": "1"}},
        {"digest": d1, "platform": amd64, "annotations": {"org.opencontainers.image.ref.name": "2"}},
        {"digest": d2, "platform": arm64, "annotations": {"io.containerd.image.name": "docker.io/x/y:arm"}}]}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("index.json", json.dumps(index).encode()), ("blobs/sha256/" + "1" * 64, b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    host.p("/x.tar").write_bytes(buf.getvalue())
    host.fake_cmd("microk8s", "ctr", "--namespace", "k8s.io", "images", "import", "--platform", "linux/amd64",
                  str(host.p("/x.tar")))
    digests = host.state("microk8s")["digests"]
    assert digests == {"docker.io/x/y:1": d1, f"import-{time.strftime('%Y-%m-%d', time.gmtime())}:2": d1}
