"""addons.sh: enable only what is missing, DNS upstreams, Calico's address autodetection."""

CNI = "/var/snap/microk8s/current/args/cni-network/cni.yaml"


def env(**extra):
    return {"JHUB_ADDONS": "dns\nhostpath-storage\nhelm3\nrbac", "JHUB_DNS_SERVERS": "10.0.0.2,10.0.0.3", **extra}


def test_enable_missing_addons_and_calico_then_second_run_changes_nothing(host):
    host.install_microk8s()
    host.set_state("microk8s", addons={"ha-cluster": True, "helm3": True})
    res = host.run("addons", env=env())
    assert res.stdout == ""
    enables = [c for c in res.lines() if c.startswith("microk8s enable")]
    assert enables == ["microk8s enable dns:10.0.0.2,10.0.0.3", "microk8s enable hostpath-storage",
                       "microk8s enable rbac"]
    assert "addon helm3 already enabled, skipping" in res.stderr
    st = host.state("microk8s")
    assert "forward . 10.0.0.2 10.0.0.3" in st["corefile"]
    # Calico: live DaemonSet and the manifest MicroK8s re-applies on upgrades
    assert res.has("microk8s kubectl -n kube-system set env daemonset/calico-node -c calico-node "
                   "IP_AUTODETECTION_METHOD=kubernetes-internal-ip")
    assert st["calico_method"] == "kubernetes-internal-ip"
    cni = host.read(CNI)
    assert '            - name: IP_AUTODETECTION_METHOD\n              value: "kubernetes-internal-ip"\n' in cni
    assert 'value: "autodetect"' in cni and "first-found" not in cni
    assert host.read("/var/lib/jhub/addons") == "dns\nhelm3\nhostpath-storage\nrbac\n"

    before = host.snapshot()
    again = host.run("addons", env=env())
    assert not again.has("microk8s enable")
    assert not again.has("microk8s kubectl -n kube-system set env")
    assert not again.has("microk8s kubectl -n kube-system patch")
    assert host.snapshot() == before
    assert "CoreDNS already forwards to 10.0.0.2 10.0.0.3, skipping" in again.stderr


def test_changed_dns_servers_are_patched_into_coredns(host):
    host.install_microk8s()
    host.run("addons", env=env())
    res = host.run("addons", env=env(JHUB_DNS_SERVERS="192.168.1.53"))
    assert not res.has("microk8s enable")
    assert res.count("microk8s kubectl -n kube-system patch configmap coredns --type merge -p") == 1
    corefile = host.state("microk8s")["corefile"]
    assert "    forward . 192.168.1.53\n" in corefile and "    cache 30\n" in corefile
    assert "CoreDNS now forwards to 192.168.1.53 (was: 10.0.0.2 10.0.0.3)" in res.stderr


def test_dns_enabled_earlier_without_servers_is_pointed_at_them(host):
    host.install_microk8s()
    host.run("addons", env=env(JHUB_DNS_SERVERS=""))
    assert "    forward . /etc/resolv.conf\n" in host.state("microk8s")["corefile"]
    res = host.run("addons", env=env())
    assert not res.has("microk8s enable")
    assert res.count("microk8s kubectl -n kube-system patch configmap coredns --type merge -p") == 1
    assert "    forward . 10.0.0.2 10.0.0.3\n" in host.state("microk8s")["corefile"]
    assert "CoreDNS now forwards to 10.0.0.2 10.0.0.3 (was: /etc/resolv.conf)" in res.stderr
    before = host.snapshot()
    again = host.run("addons", env=env())
    assert not again.has("microk8s enable") and not again.has("microk8s kubectl -n kube-system patch")
    assert host.snapshot() == before


def test_plain_dns_without_servers_is_enabled_plain_and_coredns_left_alone(host):
    host.install_microk8s()
    res = host.run("addons", env=env(JHUB_ADDONS="dns", JHUB_DNS_SERVERS=""))
    assert [c for c in res.lines() if c.startswith("microk8s enable")] == ["microk8s enable dns"]
    assert not res.has("microk8s kubectl -n kube-system get configmap coredns")


def test_dropped_addon_is_reported_never_disabled(host):
    host.install_microk8s()
    host.run("addons", env=env())
    res = host.run("addons", env=env(JHUB_ADDONS="dns\nhelm3\nrbac"))
    assert not res.has("microk8s disable")
    assert ("addon hostpath-storage is enabled but no longer in jhub:microk8s.addons; jhub leaves it on"
            in res.stderr)
    assert host.state("microk8s")["addons"]["hostpath-storage"] is True


def test_custom_autodetect_and_no_calico(host):
    host.install_microk8s()
    res = host.run("addons", env=env(JHUB_CALICO_AUTODETECT="interface=ib0"))
    assert res.has("microk8s kubectl -n kube-system set env daemonset/calico-node -c calico-node "
                   "IP_AUTODETECTION_METHOD=interface=ib0")
    assert 'value: "interface=ib0"' in host.read(CNI)
    host.set_state("microk8s", calico_present=False)
    res = host.run("addons", env=env())
    assert "no calico-node DaemonSet (another CNI?), skipping" in res.stderr


def test_bad_addons_are_refused_and_not_ready_is_reported(host):
    host.install_microk8s()
    for bad, message in [({"JHUB_ADDONS": "dns;reboot"}, "is not an addon name"),
                         ({"JHUB_DNS_SERVERS": "8.8.8.8,dns.google"}, "'dns.google' is not an IP address"),
                         ({"JHUB_CALICO_AUTODETECT": "magic"}, "JHUB_CALICO_AUTODETECT must be")]:
        res = host.run("addons", env=env(**bad), fails=True)
        assert message in res.stderr
        assert res.calls == []
    # `microk8s status --wait-ready` may exit 0 when it gives up: nothing may be enabled then
    host.set_state("microk8s", never_ready=True)
    res = host.run("addons", env=env(JHUB_ADDON_TIMEOUT="5"), fails=True)
    assert "is not ready after 5s (microk8s is not running. Use microk8s inspect" in res.stderr
    assert not res.has("microk8s enable")
