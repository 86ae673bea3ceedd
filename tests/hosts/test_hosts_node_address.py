"""node_address.sh: explicit > interface > route to the control plane > default route > first global
address; never loopback, link-local or unspecified; --node-ip in args/kubelet, kubelite restarted only
when it changed.

Most tests run the script in a fresh network namespace whose links, addresses and routes they set up
with the real `ip` (veth pairs), so the addresses are known and nothing on this machine changes."""

import subprocess

import pytest

from hostkit import netns_available

needs_netns = pytest.mark.skipif(netns_available() is not None, reason=str(netns_available()))

# eth0: a link-local address added first (scope global, as `ip addr add` does), then the real one;
# ib0: the InfiniBand-like second network
LINKS = """
ip link set lo up
ip link add eth0 type veth peer name eth0p
ip link add ib0 type veth peer name ib0p
for l in eth0 eth0p ib0 ib0p; do ip link set "$l" up; done
ip addr add 169.254.3.3/16 dev eth0
ip addr add 10.20.0.5/24 dev eth0
ip addr add 172.16.0.7/16 dev ib0
"""
DEFAULT_ROUTE = LINKS + "ip route add default via 10.20.0.1 dev eth0\n"


def kubelet_lines(host):
    return host.read("/var/snap/microk8s/current/args/kubelet").splitlines()


def node_ips(host):
    return [line for line in kubelet_lines(host) if "node-ip" in line]


@needs_netns
@pytest.mark.parametrize("cp", ["", "127.0.0.1", "0.0.0.0", "169.254.10.10", "::1"])
def test_without_a_usable_control_plane_address_the_default_route_decides(host, cp):
    host.install_microk8s()
    env = {"JHUB_CONTROL_PLANE_ADDRESS": cp}
    res = host.run("node_address", env=env, netns=DEFAULT_ROUTE)
    assert res.stdout == "10.20.0.5\n"
    assert node_ips(host) == ["--node-ip=10.20.0.5"]
    assert res.lines() == ["snap restart microk8s.daemon-kubelite"]
    assert "kubelet --node-ip set to 10.20.0.5 (default route); restarted kubelite" in res.stderr
    if cp:
        assert f"the control plane address {cp} is " in res.stderr

    before = host.snapshot()
    again = host.run("node_address", env=env, netns=DEFAULT_ROUTE)
    assert again.stdout == "10.20.0.5\n"
    assert not again.has("snap restart")
    assert host.snapshot() == before


@needs_netns
def test_route_to_the_control_plane_picks_the_nic_towards_it(host):
    host.install_microk8s()
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "172.16.5.5"}, netns=DEFAULT_ROUTE)
    assert res.stdout == "172.16.0.7\n"
    assert "(route to 172.16.5.5)" in res.stderr
    # on the control plane itself: its own address
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "10.20.0.5"}, netns=DEFAULT_ROUTE)
    assert res.stdout == "10.20.0.5\n"


@needs_netns
def test_without_a_default_route_the_first_global_address_that_is_not_link_local(host):
    host.install_microk8s()
    res = host.run("node_address", env={}, netns=LINKS)
    assert res.stdout == "10.20.0.5\n"
    assert "(first global address; no default route)" in res.stderr


@needs_netns
def test_a_host_with_nothing_usable_is_told_what_to_set(host):
    host.install_microk8s()
    before = host.snapshot()
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "127.0.0.1"}, fails=True,
                   netns="ip link set lo up\nip link add x0 type veth peer name x1\nip link set x0 up\n"
                         "ip link set x1 up\nip addr add 169.254.1.1/16 dev x0\n")
    assert "has no default route and no global IPv4 address other nodes can reach" in res.stderr
    assert "set interface or address on this jhub:nodes entry" in res.stderr
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "10.99.0.1"}, fails=True, netns=LINKS)
    assert "no route from" in res.stderr and "to the control plane 10.99.0.1" in res.stderr
    assert host.snapshot() == before


@needs_netns
def test_interface_beats_route_and_explicit_beats_both(host):
    host.install_microk8s()
    host.run("node_address", env={}, netns=DEFAULT_ROUTE)
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "10.20.0.1", "JHUB_INTERFACE": "ib0"},
                   netns=DEFAULT_ROUTE)
    assert res.stdout == "172.16.0.7\n"
    assert node_ips(host) == ["--node-ip=172.16.0.7"]
    assert res.lines() == ["snap restart microk8s.daemon-kubelite"]
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "10.20.0.1", "JHUB_INTERFACE": "ib0",
                                        "JHUB_ADDRESS": "10.20.0.5"}, netns=DEFAULT_ROUTE)
    assert res.stdout == "10.20.0.5\n"
    assert node_ips(host) == ["--node-ip=10.20.0.5"]


@needs_netns
def test_an_interface_with_only_a_link_local_address_is_refused(host):
    host.install_microk8s()
    net = LINKS + "ip link add lnk0 type veth peer name lnk1\nip link set lnk0 up\nip addr add 169.254.9.9/16 dev lnk0\n"
    res = host.run("node_address", env={"JHUB_INTERFACE": "lnk0"}, fails=True, netns=net)
    assert ("interface lnk0 on" in res.stderr
            and "has no global IPv4 address other nodes can reach (it has: 169.254.9.9)" in res.stderr)


@pytest.mark.parametrize("address,kind", [("127.0.0.1", "loopback"), ("127.0.1.1", "loopback"),
                                          ("169.254.3.3", "link-local"), ("0.0.0.0", "unspecified"),
                                          ("::1", "loopback"), ("0:0:0:0:0:0:0:1", "loopback"),
                                          ("fe80::fc:ff:fe00:1", "link-local"), ("::", "unspecified")])
def test_an_explicit_unusable_address_is_an_error_naming_it(host, address, kind):
    host.install_microk8s()
    before = host.snapshot()
    res = host.run("node_address", env={"JHUB_ADDRESS": address}, fails=True)
    assert f"JHUB_ADDRESS {address} is a {kind} address, which other nodes cannot reach" in res.stderr
    assert res.calls == [] and host.snapshot() == before


@needs_netns
def test_wrong_choices_are_refused_with_what_the_host_has(host):
    host.install_microk8s()
    before = host.snapshot()
    res = host.run("node_address", env={"JHUB_ADDRESS": "203.0.113.9"}, fails=True, netns=LINKS)
    assert "JHUB_ADDRESS 203.0.113.9 is not assigned on" in res.stderr
    assert "(it has: 10.20.0.5 172.16.0.7 fd" not in res.stderr and "(it has: 10.20.0.5 172.16.0.7)" in res.stderr
    res = host.run("node_address", env={"JHUB_INTERFACE": "ib9"}, fails=True, netns=LINKS)
    assert "interface ib9 does not exist on" in res.stderr and "ib0" in res.stderr
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "cp.lab"}, fails=True)
    assert "JHUB_CONTROL_PLANE_ADDRESS must be an IP address, got 'cp.lab'" in res.stderr
    assert host.snapshot() == before
    assert not any(c for c in host.calls() if c.line.startswith("snap restart"))


@needs_netns
def test_earlier_node_ip_is_replaced_in_place(host):
    host.install_microk8s()
    kubelet = host.p("/var/snap/microk8s/current/args/kubelet")
    original = kubelet.read_text().splitlines()
    kubelet.write_text("\n".join([original[0], "--node-ip=10.9.9.9", *original[1:], "--node-ip 10.8.8.8"]) + "\n")
    host.run("node_address", env={"JHUB_ADDRESS": "172.16.0.7"}, netns=LINKS)
    assert kubelet_lines(host) == [original[0], "--node-ip=172.16.0.7", *original[1:]]


def real_default_route_source():
    out = subprocess.run(["ip", "-o", "-4", "route", "show", "default"], capture_output=True, text=True).stdout
    if " via " not in out:
        return None
    via = out.split(" via ")[1].split()[0]
    got = subprocess.run(["ip", "-o", "route", "get", via], capture_output=True, text=True).stdout
    return got.split(" src ")[1].split()[0] if " src " in got else None


@pytest.mark.skipif(real_default_route_source() is None, reason="this machine has no IPv4 default route via a gateway")
def test_this_machines_own_default_route(host):
    """No namespace: this machine's real routes, as on a node."""
    host.install_microk8s()
    res = host.run("node_address", env={})
    assert res.stdout == f"{real_default_route_source()}\n"


@needs_netns
def test_needs_microk8s_installed(host):
    res = host.run("node_address", env={"JHUB_ADDRESS": "10.20.0.5"}, fails=True, netns=LINKS)
    assert "MicroK8s is not installed" in res.stderr and "run install first" in res.stderr
