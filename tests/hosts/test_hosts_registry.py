"""registry.sh: containerd hosts.toml per upstream pointing at a Harbor-style mirror."""

from hostkit import dedent

CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUfake\n-----END CERTIFICATE-----"
CERTS = "/var/snap/microk8s/current/args/certs.d"


def env(upstreams="docker.io /v2/dockerhub-proxy\nquay.io", ca=CA):
    return {"JHUB_REGISTRY_MIRROR": "https://harbor.lab.local/", "JHUB_REGISTRY_UPSTREAMS": upstreams,
            "JHUB_REGISTRY_CA": ca}


def test_mirror_written_once_and_second_run_restarts_nothing(host):
    host.install_microk8s()
    shipped = host.read(f"{CERTS}/docker.io/hosts.toml")
    res = host.run("registry", env=env())
    assert res.stdout == ""
    assert res.lines() == ["snap restart microk8s.daemon-containerd"]
    assert host.read(f"{CERTS}/docker.io/hosts.toml") == dedent("""
        # managed by jhub: pulls from this registry go to the site mirror
        server = "https://docker.io"

        [host."https://harbor.lab.local/v2/dockerhub-proxy"]
          capabilities = ["pull", "resolve"]
          override_path = true
          ca = "/var/snap/microk8s/current/args/certs.d/docker.io/ca.crt"
    """)
    assert host.read(f"{CERTS}/quay.io/hosts.toml") == dedent("""
        # managed by jhub: pulls from this registry go to the site mirror
        server = "https://quay.io"

        [host."https://harbor.lab.local"]
          capabilities = ["pull", "resolve"]
          ca = "/var/snap/microk8s/current/args/certs.d/quay.io/ca.crt"
    """)
    assert host.read(f"{CERTS}/quay.io/ca.crt") == CA + "\n"
    # MicroK8s's own docker.io file is kept to put back later
    assert host.read("/var/lib/jhub/registry/original/docker.io/hosts.toml") == shipped

    before = host.snapshot()
    again = host.run("registry", env=env())
    assert again.calls == []
    assert host.snapshot() == before
    assert "docker.io: already mirrored to https://harbor.lab.local/v2/dockerhub-proxy, skipping" in again.stderr


def test_stale_upstream_is_removed_and_original_restored(host):
    host.install_microk8s()
    shipped = host.read(f"{CERTS}/docker.io/hosts.toml")
    host.run("registry", env=env())
    host.write(f"{CERTS}/ghcr.io/hosts.toml", 'server = "https://ghcr.io"\n')  # the admin's own
    res = host.run("registry", env=env(upstreams="docker.io /v2/dockerhub-proxy", ca=""))
    assert res.lines() == ["snap restart microk8s.daemon-containerd"]
    assert not host.p(f"{CERTS}/quay.io").exists()
    assert not host.p(f"{CERTS}/docker.io/ca.crt").exists()
    assert "ca =" not in host.read(f"{CERTS}/docker.io/hosts.toml")
    assert "quay.io: no longer mirrored; removed" in res.stderr
    assert host.read(f"{CERTS}/ghcr.io/hosts.toml") == 'server = "https://ghcr.io"\n'

    # no mirror at all: docker.io gets MicroK8s's file back
    res = host.run("registry", env={"JHUB_REGISTRY_MIRROR": "", "JHUB_REGISTRY_UPSTREAMS": ""})
    assert host.read(f"{CERTS}/docker.io/hosts.toml") == shipped
    assert not host.p("/var/lib/jhub/registry/original/docker.io").exists()
    assert "docker.io: no longer mirrored; restored the original hosts.toml" in res.stderr
    assert host.p(f"{CERTS}/ghcr.io/hosts.toml").exists()


def test_bad_input_is_refused_before_any_change(host):
    host.install_microk8s()
    before = host.snapshot()
    for bad, message in [
        ({"JHUB_REGISTRY_MIRROR": "harbor.lab.local"}, "JHUB_REGISTRY_MIRROR must be a URL"),
        ({"JHUB_REGISTRY_MIRROR": "", "JHUB_REGISTRY_UPSTREAMS": "docker.io"}, "JHUB_REGISTRY_MIRROR is empty"),
        ({"JHUB_REGISTRY_UPSTREAMS": "docker.io v2/x"}, "path 'v2/x' must start with /"),
        ({"JHUB_REGISTRY_UPSTREAMS": "bad_host!"}, "'bad_host!' is not a registry host name"),
        ({"JHUB_REGISTRY_CA": "not a pem"}, "JHUB_REGISTRY_CA must be PEM text"),
    ]:
        res = host.run("registry", env={**env(), **bad}, fails=True)
        assert message in res.stderr
    assert host.snapshot() == before
    assert not any(c.line.startswith("snap restart") for c in host.calls())


def test_the_build_registry_is_trusted_with_the_site_ca_and_dropped_with_it(host):
    host.install_microk8s()
    direct = {"JHUB_REGISTRY_MIRROR": "", "JHUB_REGISTRY_UPSTREAMS": "", "JHUB_REGISTRY_CA": CA,
              "JHUB_BUILD_REGISTRY": "harbor.lab.local:8443"}
    res = host.run("registry", env=direct)
    assert res.lines() == ["snap restart microk8s.daemon-containerd"]
    assert host.read(f"{CERTS}/harbor.lab.local:8443/hosts.toml") == dedent("""
        # managed by jhub: pulls from this registry go to the site mirror
        server = "https://harbor.lab.local:8443"

        [host."https://harbor.lab.local:8443"]
          capabilities = ["pull", "resolve"]
          ca = "/var/snap/microk8s/current/args/certs.d/harbor.lab.local:8443/ca.crt"
    """)
    assert host.read(f"{CERTS}/harbor.lab.local:8443/ca.crt") == CA + "\n"
    assert not host.p(f"{CERTS}/quay.io").exists(), "no mirror: no upstream is redirected"
    before = host.snapshot()
    assert host.run("registry", env=direct).calls == [] and host.snapshot() == before

    # beside a mirror; an upstream of the same name keeps the mirror's file
    res = host.run("registry", env={**env(upstreams="quay.io"), "JHUB_BUILD_REGISTRY": "quay.io"})
    assert 'host."https://harbor.lab.local"' in host.read(f"{CERTS}/quay.io/hosts.toml")
    assert not host.p(f"{CERTS}/harbor.lab.local:8443").exists()
    # without a CA, containerd's own trust serves it: no file
    host.run("registry", env={**direct, "JHUB_REGISTRY_CA": ""})
    assert not host.p(f"{CERTS}/harbor.lab.local:8443").exists() and not host.p(f"{CERTS}/quay.io").exists()
    bad = host.run("registry", env={**direct, "JHUB_BUILD_REGISTRY": "harbor.local/jhub"}, fails=True)
    assert "JHUB_BUILD_REGISTRY must be a registry host name" in bad.stderr
