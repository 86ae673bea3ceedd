"""cleanup.sh: the uploaded bundle goes, nothing else does; a rerun is a no-op."""


def test_cleanup_removes_only_the_uploaded_bundle(host):
    host.write("/var/lib/jhub/bundle/snaps/microk8s.snap", "snap")
    host.write("/var/lib/jhub/bundle/images/pause.tar", "image")
    host.write("/var/lib/jhub/cluster-id", "jhub-dev-gpu01\n")
    res = host.run("cleanup", env={})
    assert "removed the uploaded bundle in /var/lib/jhub/bundle" in res.stderr
    assert not host.p("/var/lib/jhub/bundle").exists()
    assert host.read("/var/lib/jhub/cluster-id") == "jhub-dev-gpu01\n"
    before = host.snapshot()
    again = host.run("cleanup", env={})
    assert "nothing to remove" in again.stderr and host.snapshot() == before


def test_cleanup_refuses_paths_outside_var_lib_jhub(host):
    host.write("/etc/keep", "x")
    for bad in ("/etc", "/var/lib/jhub", "/var/lib/jhub/../../etc", "relative"):
        res = host.run("cleanup", env={"JHUB_BUNDLE_DIR": bad}, fails=True)
        assert "JHUB_BUNDLE_DIR must" in res.stderr
    assert host.read("/etc/keep") == "x"
