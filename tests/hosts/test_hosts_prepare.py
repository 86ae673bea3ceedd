"""prepare.sh: swap, modules, sysctls, /etc/hosts block and bundle directory, all persistent."""

import os
import pwd

import pytest

from hostkit import dedent

NODE = os.uname().nodename.lower()
# chown to another user needs root; otherwise the bundle directory goes to the user running the tests
OWNER = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
HOSTS_BEFORE = "127.0.0.1 localhost\n# a comment the admin wrote\n10.9.9.9 printer\n"
FSTAB = dedent("""
    UUID=abcd / ext4 defaults 0 1
    /swap.img	none	swap	sw	0	0
    # /old-swap none swap sw 0 0
    /dev/sdb1 /data xfs defaults 0 2
""")


def env(**extra):
    return {"JHUB_NODE_NAME": NODE, "JHUB_HOSTS": "10.0.0.1 gpu01\n10.0.0.2 gpu02\n", **extra}


def test_prepare_writes_persistent_settings_and_second_run_changes_nothing(host):
    host.write("/etc/hosts", HOSTS_BEFORE)
    host.write("/etc/fstab", FSTAB)
    res = host.run("prepare", env=env(JHUB_BUNDLE_OWNER=OWNER))
    assert res.stdout == ""
    assert res.calls == []  # no snap, no microk8s

    assert host.read("/etc/fstab") == FSTAB.replace("/swap.img", "#jhub-swapoff# /swap.img")
    assert host.read("/etc/modules-load.d/jhub.conf").splitlines()[1:] == ["overlay", "br_netfilter"]
    sysctl = host.read("/etc/sysctl.d/90-jhub.conf")
    for line in ("net.bridge.bridge-nf-call-iptables = 1", "net.bridge.bridge-nf-call-ip6tables = 1",
                 "net.ipv4.ip_forward = 1", "fs.inotify.max_user_instances = 8192",
                 "fs.inotify.max_user_watches = 1048576"):
        assert line in sysctl.splitlines()
    assert host.read("/etc/hosts") == HOSTS_BEFORE + dedent("""
        # BEGIN jhub (managed by jhub; edits inside this block are replaced)
        10.0.0.1 gpu01
        10.0.0.2 gpu02
        # END jhub
    """)
    bundle = host.p("/var/lib/jhub/bundle")
    assert bundle.is_dir() and bundle.stat().st_uid == pwd.getpwnam(OWNER).pw_uid
    # live kernel actions are skipped, and say so
    for what in ("swapoff", "modprobe overlay", "modprobe br_netfilter", "sysctl"):
        assert f"JHUB_ROOT is set: skipping {what}" in res.stderr
    assert "commented out swap entries in /etc/fstab" in res.stderr

    before = host.snapshot()
    again = host.run("prepare", env=env(JHUB_BUNDLE_OWNER=OWNER))
    assert host.snapshot() == before
    assert "already up to date" in again.stderr and f"already owned by {OWNER}" in again.stderr


def test_hosts_block_is_replaced_as_a_whole_and_other_lines_stay(host):
    host.write("/etc/hosts", HOSTS_BEFORE)
    host.run("prepare", env=env())
    host.write("/etc/hosts", host.read("/etc/hosts") + "10.1.1.1 added-later\n")
    host.run("prepare", env=env(JHUB_HOSTS="10.0.0.1 gpu01\n10.0.0.3 gpu03"))
    assert host.read("/etc/hosts") == HOSTS_BEFORE + dedent("""
        # BEGIN jhub (managed by jhub; edits inside this block are replaced)
        10.0.0.1 gpu01
        10.0.0.3 gpu03
        # END jhub
        10.1.1.1 added-later
    """)
    host.run("prepare", env=env(JHUB_HOSTS=""))
    assert host.read("/etc/hosts") == HOSTS_BEFORE + "10.1.1.1 added-later\n"


def test_prepare_refuses_bad_input_before_changing_anything(host):
    host.write("/etc/hosts", HOSTS_BEFORE)
    before = host.snapshot()
    res = host.run("prepare", env=env(JHUB_HOSTS="10.0.0.1 gpu01\nnot-an-ip gpu02"), fails=True)
    assert "JHUB_HOSTS line 2 must be 'address name', got 'not-an-ip gpu02'" in res.stderr
    res = host.run("prepare", env=env(JHUB_BUNDLE_OWNER="no-such-user-xyz"), fails=True)
    assert "JHUB_BUNDLE_OWNER 'no-such-user-xyz' is not a user" in res.stderr
    res = host.run("prepare", env={"JHUB_NODE_NAME": "GPU_01"}, fails=True)
    assert "JHUB_NODE_NAME 'GPU_01' is not a valid node name" in res.stderr
    assert host.snapshot() == before


def test_broken_hosts_block_is_reported_not_guessed(host):
    host.write("/etc/hosts", HOSTS_BEFORE + "# BEGIN jhub (managed by jhub; edits inside this block are replaced)\n1.2.3.4 x\n")
    host.write("/etc/fstab", FSTAB)
    before = host.snapshot()
    res = host.run("prepare", env=env(), fails=True)
    assert host.snapshot() == before
    assert "/etc/hosts has 1 '# BEGIN jhub' and 0 '# END jhub' lines; fix the jhub block by hand" in res.stderr


@pytest.mark.parametrize("hostname, name, same", [
    ("gpu01.lab.example.org", "gpu01.lab.example.org", True),   # an FQDN: the kubelet registers all of it
    ("GPU01.Lab.Example.ORG", "gpu01.lab.example.org", True),   # upper case: the kubelet lower-cases it
    ("GPU01", "gpu01", True),
    ("gpu01.lab.example.org", "gpu01", False),                  # a name of the admin's choosing
    ("server-7", "jhub-cp", False),
])
def test_prepare_accepts_the_names_admins_have(host, hostname, name, same):
    host.nodename = hostname
    res = host.run("prepare", env={"JHUB_NODE_NAME": name})
    if same:
        assert f"host name {hostname} is the node name {name}" in res.stderr
    else:
        assert f"install.sh sets the kubelet's --hostname-override={name}" in res.stderr
