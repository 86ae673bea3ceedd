"""The README's first run on one `host: local` control plane, script by script in the order the program
runs them, with the host names admins really have: an FQDN, upper case, and a name that is not the
host's. The fake kubelet registers the node under the name its arguments give (or the lower-cased host
name), so labels.sh finds the node only when prepare, install and the kubelet agree on its name."""

import pytest

ONLINE = {"JHUB_MODE": "online", "JHUB_CHANNEL": "1.32/stable", "JHUB_CONTAINERD_TIMEOUT": "30"}


@pytest.mark.parametrize("hostname, name", [
    ("gpu01.lab.example.org", "gpu01.lab.example.org"),  # FQDN, name left out: the whole host name
    ("GPU01", "gpu01"),                                  # upper case
    ("GPU01.Lab.Example.ORG", "gpu01.lab.example.org"),
    ("server-7.campus.example.edu", "jhub-cp"),          # a name that is not the host's
])
def test_first_run_on_a_local_control_plane(host, hostname, name):
    host.nodename = hostname
    host.write("/etc/hosts", "127.0.0.1 localhost\n")
    host.set_state("microk8s", kubelet_registers=True)
    node = {"JHUB_NODE_NAME": name}
    host.run("prepare", env={**node, "JHUB_HOSTS": ""})
    host.run("install", env={**ONLINE, **node})
    host.seed_node_images()  # online: the node pulls Calico and pause itself
    host.run("ready", env={**node, "JHUB_WAIT_READY_TIMEOUT": "5"})
    host.run("addons", env={"JHUB_ADDONS": "dns\nhostpath-storage", "JHUB_DNS_SERVERS": "10.0.0.2",
                            "JHUB_CALICO_AUTODETECT": "kubernetes-internal-ip"})
    res = host.run("labels", env={**node, "JHUB_LABELS": "jhub.io/pool=a100", "JHUB_NODE_WAIT_TIMEOUT": "5"})
    nodes = host.state("microk8s")["nodes"]
    assert list(nodes) == [name], "the kubelet registered the node under jhub's name"
    assert nodes[name]["labels"]["jhub.io/pool"] == "a100"
    facts = host.run("facts").stdout
    assert f'"hostname":"{hostname}"' in facts and '"running":true' in facts
    assert res.stdout == ""

    # a second first run changes nothing
    before = host.snapshot()
    host.run("prepare", env={**node, "JHUB_HOSTS": ""})
    again = host.run("install", env={**ONLINE, **node})
    assert host.snapshot() == before and not again.has("snap restart") and not again.has("snap install")
