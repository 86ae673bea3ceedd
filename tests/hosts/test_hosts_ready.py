"""ready.sh: install -> images (or a registry mirror) -> ready works; ready before the images fails with
a diagnosis a person can act on; ready-once is recorded the first time."""

from hostkit import image_tarball
from test_hosts_install import bundle

IMAGE_DIR = "/var/lib/jhub/bundle/images"
NODE_IMAGES = ["registry.k8s.io/pause:3.10", "docker.io/calico/cni:v3.28.1", "docker.io/calico/node:v3.28.1",
               "docker.io/calico/kube-controllers:v3.28.1"]


def env(**extra):
    return {"JHUB_NODE_NAME": "gpu02", "JHUB_WAIT_READY_TIMEOUT": "5", **extra}


def images_env(host, refs=NODE_IMAGES):
    sha = image_tarball(host, f"{IMAGE_DIR}/microk8s-core.tar", refs)
    return {"JHUB_IMAGE_DIR": IMAGE_DIR, "JHUB_IMAGES": f"microk8s-core.tar {sha} {','.join(refs)}\n"}


def test_ready_before_images_fails_with_a_diagnosis_then_install_images_ready_works(host):
    host.run("install", env=bundle(host))
    res = host.run("ready", env=env(), fails=True)
    assert res.has("microk8s status --wait-ready --timeout 5 --format short")
    for ref in NODE_IMAGES:
        assert f"image {ref} is not on this node: check the offline bundle / registry mirror" in res.stderr
    assert ("kube-system pods not running: calico-node-x7k2p (Init:0/2, ready 0/1), "
            "calico-kube-controllers-7c5c8b8d4f-q9w2z (Pending, ready 0/1)") in res.stderr
    assert "microk8s on gpu02 is not ready after 5s; it has not been ready since jhub installed it" in res.stderr
    assert "set reset to a new value" in res.stderr
    assert "ready.sh: microk8s on gpu02 is not ready after 5s" in host.read("/var/lib/jhub/not-ready")
    assert not host.p("/var/lib/jhub/ready-once").exists()
    assert res.stdout == ""

    host.run("images", env=images_env(host))
    res = host.run("ready", env=env())
    assert "microk8s is ready" in res.stderr
    assert host.read("/var/lib/jhub/ready-once").startswith("revision=7229\nfirst-ready=")
    assert not host.p("/var/lib/jhub/not-ready").exists()

    before = host.snapshot()
    again = host.run("ready", env=env())
    assert host.snapshot() == before
    assert [c for c in again.lines() if not c.startswith("snap list")] == [
        "microk8s status --wait-ready --timeout 5 --format short"]


def test_only_the_missing_image_is_named(host):
    host.run("install", env=bundle(host))
    host.run("images", env=images_env(host, [r for r in NODE_IMAGES if "calico/node" not in r]))
    res = host.run("ready", env=env(), fails=True)
    assert "image docker.io/calico/node:v3.28.1 is not on this node" in res.stderr
    assert res.stderr.count("is not on this node") == 1
    assert "calico-node-x7k2p (ImagePullBackOff, ready 0/1)" in res.stderr


def test_a_registry_mirror_provides_the_images(host):
    host.run("install", env=bundle(host))
    mirror = {"JHUB_REGISTRY_MIRROR": "https://harbor.lab.local",
              "JHUB_REGISTRY_UPSTREAMS": "docker.io /v2/dockerhub-proxy\nregistry.k8s.io /v2/k8s-proxy"}
    host.run("registry", env=mirror)
    host.set_state("microk8s", mirror_serves=False)
    res = host.run("ready", env=env(), fails=True)
    assert ("image docker.io/calico/node:v3.28.1 is not on this node and was not pulled through the registry "
            "mirror https://harbor.lab.local/v2/dockerhub-proxy (configured for docker.io): check that the mirror "
            "serves it") in res.stderr
    assert "mirror https://harbor.lab.local/v2/k8s-proxy (configured for registry.k8s.io)" in res.stderr

    host.set_state("microk8s", mirror_serves=True)
    host.run("ready", env=env())
    assert host.p("/var/lib/jhub/ready-once").exists()


def test_broken_kubelite_is_named(host):
    host.run("install", env=bundle(host))
    host.seed_node_images()
    host.set_state("microk8s", never_ready=True)
    host.set_state("snap", services={"microk8s.daemon-kubelite": "inactive"})
    res = host.run("ready", env=env(), fails=True)
    assert "kubelite is not running; see 'sudo snap logs -n 50 microk8s.daemon-kubelite'" in res.stderr
    assert "the API server does not answer, so the kube-system pods cannot be listed" in res.stderr
    assert "is not on this node" not in res.stderr


def test_adopted_microk8s_that_is_not_ready_gets_no_reset_advice(host):
    host.install_microk8s(running=False)
    res = host.run("ready", env=env(), fails=True)
    assert "microk8s on gpu02 is not ready after 5s. Fix what is reported above" in res.stderr
    assert "reset" not in res.stderr


def test_worker_of_a_cluster_waits_for_kubelite(host):
    host.install_microk8s()
    host.p("/var/snap/microk8s/current/var/lock/clustered.lock").touch()
    res = host.run("ready", env=env())
    assert not res.has("microk8s status")
    assert "kubelite is running (the control plane reports this worker's readiness)" in res.stderr
    host.set_state("snap", services={"microk8s.daemon-kubelite": "inactive"})
    res = host.run("ready", env=env(JHUB_WAIT_READY_TIMEOUT="1"), fails=True)
    assert "kubelite on worker gpu02 is not running after 1s" in res.stderr
    assert "was ready before, so jhub leaves it as it is" in res.stderr


def test_ready_needs_microk8s_and_a_whole_number(host):
    res = host.run("ready", env=env(), fails=True)
    assert "microk8s is not installed on gpu02; install.sh runs before ready.sh" in res.stderr
    res = host.run("ready", env=env(JHUB_WAIT_READY_TIMEOUT="ten"), fails=True)
    assert "JHUB_WAIT_READY_TIMEOUT must be a whole number of seconds, got 'ten'" in res.stderr


def test_the_fake_status_exits_like_the_real_one_and_the_scripts_rely_on_the_first_line(host):
    """The real `microk8s status` exits 1 when MicroK8s is not running; the scripts read its first line
    and must not be thrown off by the exit status."""
    import subprocess

    from hostkit import FAKES

    host.run("install", env=bundle(host))
    proc = subprocess.run([str(FAKES / "microk8s"), "status", "--format", "short"], env=host.env({}),
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout.startswith("microk8s is not running")
    facts = host.run("facts")
    assert '"running":false' in facts.stdout and '"role":"control-plane"' in facts.stdout
    host.run("images", env=images_env(host))
    proc = subprocess.run([str(FAKES / "microk8s"), "status"], env=host.env({}), capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("microk8s is running")
    assert '"running":true' in host.run("facts").stdout
