"""uninstall.sh: jhub's host changes always go; the MicroK8s snap goes only when jhub installed it and
JHUB_KEEP_MICROK8S is 0; a rerun is a no-op; it completes while removing the folder it runs from."""

import os

from hostkit import copy_scripts
from test_hosts_install import bundle

NODE = os.uname().nodename.lower()
FSTAB = "UUID=x / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"


def jhub_host(host):
    """A node as jhub leaves it: prepared, MicroK8s installed by jhub, a worker admitted, the bundle
    and the scripts uploaded."""
    host.write("/etc/hosts", "127.0.0.1 localhost\n")
    host.write("/etc/fstab", FSTAB)
    host.write("/etc/sysctl.d/10-site.conf", "vm.swappiness = 10\n")
    host.run("prepare", env={"JHUB_NODE_NAME": NODE, "JHUB_HOSTS": "10.0.0.1 gpu01"})
    host.run("install", env=bundle(host))
    host.run("admit", "add", env={"JHUB_NODE_NAME": "gpu02", "JHUB_NODE_ADDRESS": "10.0.0.2"},
             stdin="Abcdefghijklmnopqrstuvwxyz012345")
    host.write("/var/lib/jhub/bundle/images/hub.tar", "image")
    return copy_scripts(host.p("/var/lib/jhub/scripts"))


def assert_host_changes_undone(host):
    assert not host.p("/var/lib/jhub").exists()
    assert not host.p("/etc/sysctl.d/90-jhub.conf").exists()
    assert not host.p("/etc/modules-load.d/jhub.conf").exists()
    assert host.read("/etc/sysctl.d/10-site.conf") == "vm.swappiness = 10\n"
    assert host.read("/etc/hosts") == "127.0.0.1 localhost\n"
    assert host.read("/etc/fstab") == FSTAB


def test_uninstall_removes_what_jhub_added_and_only_that(host):
    jhub_host(host)
    res = host.run("uninstall", env={"JHUB_PURGE": "1"})
    assert res.has("snap remove microk8s --purge")
    assert not host.p("/var/snap/microk8s").exists()
    assert_host_changes_undone(host)

    before = host.snapshot()
    again = host.run("uninstall", env={"JHUB_PURGE": "1"})
    assert not again.has("snap remove") and host.snapshot() == before
    assert "microk8s is not installed, skipping" in again.stderr


def test_keep_microk8s_keeps_what_it_runs_on_and_jhubs_record_of_it(host):
    """removeOnDestroy false: MicroK8s keeps running, so the host settings it needs (swap off, modules,
    sysctls, the names it resolves) stay, and so does jhub's record that it installed this MicroK8s (the
    next `pulumi up` must not take it for adopted), with the rest of jhub's state about it. The bundle and
    the scripts go."""
    jhub_host(host)
    settings = {path: host.read(path) for path in ("/etc/hosts", "/etc/fstab", "/etc/sysctl.d/90-jhub.conf",
                                                   "/etc/modules-load.d/jhub.conf")}
    host.run("ready", env={"JHUB_NODE_NAME": NODE, "JHUB_WAIT_READY_TIMEOUT": "5"}, fails=True)  # not-ready
    record = host.read("/var/lib/jhub/microk8s.installed")
    res = host.run("uninstall", env={"JHUB_KEEP_MICROK8S": "1", "JHUB_PURGE": "1"})
    assert not res.has("snap remove")
    assert "JHUB_KEEP_MICROK8S=1: keeping microk8s rev 7229 and its data" in res.stderr
    assert "microk8s" in host.state("snap")["installed"]
    assert host.p("/var/snap/microk8s/current/args/kubelet").exists()
    assert {path: host.read(path) for path in settings} == settings
    assert "keeping swap off, the modules, the sysctls and the /etc/hosts blocks" in res.stderr
    assert host.read("/var/lib/jhub/microk8s.installed") == record and "origin=jhub" in record
    assert not host.p("/var/lib/jhub/bundle").exists() and not host.p("/var/lib/jhub/scripts").exists()
    assert host.p("/var/lib/jhub/not-ready").exists()  # what jhub knows of this MicroK8s stays whole
    assert host.read("/etc/sysctl.d/10-site.conf") == "vm.swappiness = 10\n"

    before = host.snapshot()
    again = host.run("uninstall", env={"JHUB_KEEP_MICROK8S": "1"})
    assert again.calls == [c for c in again.calls if c.line.startswith("snap list")]
    assert host.snapshot() == before

    # the next `pulumi up` knows this MicroK8s as jhub's, and a later removal with removeOnDestroy removes it
    res = host.run("install", env=bundle(host))
    assert "adopting" not in res.stderr and "origin=jhub" in host.read("/var/lib/jhub/microk8s.installed")
    res = host.run("uninstall", env={"JHUB_PURGE": "1"})
    assert res.has("snap remove microk8s --purge")
    assert_host_changes_undone(host)


def test_adopted_or_unknown_microk8s_is_never_removed(host):
    host.install_microk8s()
    res = host.run("uninstall", env={"JHUB_PURGE": "1"})
    assert not res.has("snap remove")
    assert "jhub has no record of installing microk8s rev 7229" in res.stderr

    host.run("install", env=bundle(host))  # same revision: adopted
    assert "origin=adopted" in host.read("/var/lib/jhub/microk8s.installed")
    res = host.run("uninstall", env={"JHUB_PURGE": "1"})
    assert not res.has("snap remove")
    assert "microk8s rev 7229 was installed outside jhub (adopted), so jhub leaves it installed" in res.stderr
    # it keeps running: its record stays, so the next `pulumi up` still knows it as adopted
    assert "origin=adopted" in host.read("/var/lib/jhub/microk8s.installed")

    host.fake_cmd("snap", "remove", "microk8s")  # removed by its owner: now everything of jhub's goes
    host.run("uninstall", env={"JHUB_PURGE": "1"})
    assert not host.p("/var/lib/jhub").exists()


def test_uninstall_completes_while_removing_the_folder_it_runs_from(host):
    scripts = jhub_host(host)
    assert str(scripts).startswith(str(host.p("/var/lib/jhub/scripts/")))
    res = host.run("uninstall", env={}, script_dir=scripts)
    assert not scripts.exists() and not host.p("/var/lib/jhub").exists()
    assert "jhub[uninstall]: removed /var/lib/jhub" in res.stderr
    assert res.stderr.rstrip().endswith("jhub's changes to " + os.uname().nodename + " are undone")
    assert res.has("snap remove microk8s")


def test_uninstall_input_errors(host):
    host.install_microk8s()
    res = host.run("uninstall", env={"JHUB_PURGE": "yes"}, fails=True)
    assert "JHUB_PURGE must be 0 or 1, got 'yes'" in res.stderr
    res = host.run("uninstall", env={"JHUB_KEEP_MICROK8S": "true"}, fails=True)
    assert "JHUB_KEEP_MICROK8S must be 0 or 1, got 'true'" in res.stderr
    assert not host.calls()
