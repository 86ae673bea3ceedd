"""uninstall.sh: MicroK8s and everything jhub put on the host go; a rerun is a no-op."""

import os



def test_uninstall_removes_what_jhub_added_and_only_that(host):
    node = os.uname().nodename.lower()
    host.write("/etc/hosts", "127.0.0.1 localhost\n")
    fstab = "UUID=x / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"
    host.write("/etc/fstab", fstab)
    host.write("/etc/sysctl.d/10-site.conf", "vm.swappiness = 10\n")
    host.run("prepare", env={"JHUB_NODE_NAME": node, "JHUB_HOSTS": "10.0.0.1 gpu01"})
    host.install_microk8s()
    host.run("admit", "add", env={"JHUB_NODE_NAME": "gpu02", "JHUB_NODE_ADDRESS": "10.0.0.2"},
             stdin="Abcdefghijklmnopqrstuvwxyz012345")

    res = host.run("uninstall", env={"JHUB_PURGE": "1"})
    assert res.has("snap remove microk8s --purge")
    assert not host.p("/var/snap/microk8s").exists()
    assert not host.p("/var/lib/jhub").exists()
    assert not host.p("/etc/sysctl.d/90-jhub.conf").exists()
    assert not host.p("/etc/modules-load.d/jhub.conf").exists()
    assert host.read("/etc/sysctl.d/10-site.conf") == "vm.swappiness = 10\n"
    assert host.read("/etc/hosts") == "127.0.0.1 localhost\n"
    assert host.read("/etc/fstab") == fstab

    before = host.snapshot()
    again = host.run("uninstall", env={"JHUB_PURGE": "1"})
    assert not again.has("snap remove") and host.snapshot() == before
    assert "microk8s is not installed, skipping" in again.stderr


def test_uninstall_without_purge(host):
    host.install_microk8s()
    res = host.run("uninstall", env={})
    assert res.has("snap remove microk8s") and not res.has("snap remove microk8s --purge")
    res = host.run("uninstall", env={"JHUB_PURGE": "yes"}, fails=True)
    assert "JHUB_PURGE must be 0 or 1, got 'yes'" in res.stderr
