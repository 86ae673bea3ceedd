"""node_address.sh: explicit > interface > route to the control plane; --node-ip in args/kubelet;
kubelite restarted only when it changed."""

import subprocess

import pytest


def real_global_ipv4():
    """(interface, address) of this machine's first global IPv4 address, if any."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        return f[1], f[3].split("/")[0]
    return None


def kubelet_lines(host):
    return host.read("/var/snap/microk8s/current/args/kubelet").splitlines()


def test_route_to_control_plane_picks_the_source_address(host):
    host.install_microk8s()
    # the control plane is this machine itself here: the kernel picks 127.0.0.1 to reach it
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "127.0.0.1"})
    assert res.stdout == "127.0.0.1\n"
    assert kubelet_lines(host)[-1] == "--node-ip=127.0.0.1"
    assert res.lines() == ["snap restart microk8s.daemon-kubelite"]
    assert "(route to 127.0.0.1)" in res.stderr

    before = host.snapshot()
    again = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "127.0.0.1"})
    assert again.stdout == "127.0.0.1\n"
    assert not again.has("snap restart")
    assert host.snapshot() == before



@pytest.mark.skipif(real_global_ipv4() is None, reason="this machine has no global IPv4 address")
def test_route_to_a_remote_address_uses_the_nic_towards_it(host):
    iface, addr = real_global_ipv4()
    host.install_microk8s()
    # a documentation address: routed by the default route, never contacted
    out = subprocess.run(["ip", "-o", "route", "get", "198.51.100.7"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("no route to 198.51.100.7 on this machine")
    expected = out.stdout.split(" src ")[1].split()[0]
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "198.51.100.7"})
    assert res.stdout == f"{expected}\n"


def test_interface_beats_route_and_explicit_beats_both(host):
    host.install_microk8s()
    host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "127.0.0.1"})
    nic = real_global_ipv4()
    if nic:
        iface, addr = nic
        res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "127.0.0.1", "JHUB_INTERFACE": iface})
        assert res.stdout == f"{addr}\n"
        assert [line for line in kubelet_lines(host) if "node-ip" in line] == [f"--node-ip={addr}"]
        assert res.lines() == ["snap restart microk8s.daemon-kubelite"]
    res = host.run("node_address", env={"JHUB_CONTROL_PLANE_ADDRESS": "198.51.100.7", "JHUB_INTERFACE": "lo",
                                        "JHUB_ADDRESS": "127.0.0.1"})
    assert res.stdout == "127.0.0.1\n"
    assert [line for line in kubelet_lines(host) if "node-ip" in line] == ["--node-ip=127.0.0.1"]


def test_earlier_node_ip_is_replaced_in_place(host):
    host.install_microk8s()
    kubelet = host.p("/var/snap/microk8s/current/args/kubelet")
    original = kubelet.read_text().splitlines()
    kubelet.write_text("\n".join([original[0], "--node-ip=10.9.9.9", *original[1:], "--node-ip 10.8.8.8"]) + "\n")
    host.run("node_address", env={"JHUB_ADDRESS": "127.0.0.1"})
    assert kubelet_lines(host) == [original[0], "--node-ip=127.0.0.1", *original[1:]]


def test_wrong_choices_are_refused_with_what_the_host_has(host):
    host.install_microk8s()
    before = host.snapshot()
    res = host.run("node_address", env={"JHUB_ADDRESS": "203.0.113.9"}, fails=True)
    assert "JHUB_ADDRESS 203.0.113.9 is not assigned on" in res.stderr and "(it has: " in res.stderr
    res = host.run("node_address", env={"JHUB_INTERFACE": "ib9"}, fails=True)
    assert "interface ib9 does not exist on" in res.stderr and "lo" in res.stderr
    res = host.run("node_address", env={}, fails=True)
    assert "JHUB_CONTROL_PLANE_ADDRESS is required" in res.stderr
    assert host.snapshot() == before
    assert not any(c for c in host.calls() if c.line.startswith("snap restart"))


def test_needs_microk8s_installed(host):
    res = host.run("node_address", env={"JHUB_ADDRESS": "127.0.0.1"}, fails=True)
    assert "MicroK8s is not installed" in res.stderr and "run install first" in res.stderr
