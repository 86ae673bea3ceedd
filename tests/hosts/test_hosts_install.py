"""install.sh: offline snap install in the given order, online install, refresh hold, containerd wait,
adoption of a MicroK8s jhub did not install, and one-shot resets of half-installed or foreign ones."""

import pytest

from hostkit import copy_scripts

SNAP_DIR = "/var/lib/jhub/bundle/snaps"
RECORD = "/var/lib/jhub/microk8s.installed"


def snap_files(host, name, rev):
    host.write(f"{SNAP_DIR}/{name}_{rev}.snap", f"{name} snap payload")
    host.write(f"{SNAP_DIR}/{name}_{rev}.assert",
               f"type: account-key\n\ntype: snap-declaration\nsnap-name: {name}\n\n"
               f"type: snap-revision\nsnap-revision: {rev}\nsnap-id: abc\n")
    return f"{name} {name}_{rev}.snap {name}_{rev}.assert\n"


def bundle(host, core_rev="2434", mk8s_rev="7229", **extra):
    return {
        "JHUB_MODE": "air-gapped",
        "JHUB_CHANNEL": "1.32/stable",
        "JHUB_SNAP_DIR": SNAP_DIR,
        "JHUB_SNAPS": snap_files(host, "core20", core_rev) + snap_files(host, "microk8s", mk8s_rev),
        "JHUB_NODE_NAME": "gpu02",
        "JHUB_CONTAINERD_TIMEOUT": "30",
        **extra,
    }


def ready_env(**extra):
    return {"JHUB_NODE_NAME": "gpu02", "JHUB_WAIT_READY_TIMEOUT": "5", **extra}


def record(host):
    return dict(line.split("=", 1) for line in host.read(RECORD).splitlines())


@pytest.mark.parametrize("style", ["repository", "uploaded", "bash -c"])
def test_air_gapped_install_waits_for_containerd_only_then_second_run_installs_nothing(host, style):
    host.component_style = style == "bash -c"
    host.nodename = "gpu02"  # the host name is the node name: the kubelet's arguments stay as they are
    # uploaded: as the components run it over SSH, from /var/lib/jhub/scripts/<sha>/ on the node
    scripts = copy_scripts(host.p("/var/lib/jhub/scripts")) if style == "uploaded" else None
    env = bundle(host)
    res = host.run("install", env=env, script_dir=scripts)
    snaps = str(host.p(SNAP_DIR))
    assert res.stdout == ""
    assert [c for c in res.lines() if not c.startswith("snap list")] == [
        f"snap ack {snaps}/core20_2434.assert",
        f"snap install {snaps}/core20_2434.snap",
        f"snap ack {snaps}/microk8s_7229.assert",
        f"snap install {snaps}/microk8s_7229.snap --classic",
        "snap refresh --hold=forever microk8s",
        "microk8s ctr version",
    ]
    # no readiness wait here: an air-gapped node is Ready only after images.sh
    assert not res.has("microk8s status")
    assert record(host) == {"mode": "air-gapped", "channel": "1.32/stable", "revision": "7229", "origin": "jhub"}
    assert "installed microk8s rev 7229 from /var/lib/jhub/bundle/snaps/microk8s_7229.snap" in res.stderr
    assert "containerd of microk8s answers" in res.stderr
    assert not host.p("/var/lib/jhub/ready-once").exists()

    before = host.snapshot()
    again = host.run("install", env=env, script_dir=scripts)
    assert not again.has("snap install") and not again.has("snap ack") and not again.has("snap refresh")
    assert host.snapshot() == before
    assert "jhub[install]: microk8s rev 7229 already installed, skipping" in again.stderr
    assert "automatic refreshes of microk8s already held" in again.stderr


def test_snaps_are_installed_in_the_order_given_with_microk8s_last(host):
    env = bundle(host)
    env["JHUB_SNAPS"] = snap_files(host, "snapd", "21759") + env["JHUB_SNAPS"]
    res = host.run("install", env=env)
    snaps = str(host.p(SNAP_DIR))
    assert [c for c in res.lines() if c.startswith(("snap ack", "snap install"))] == [
        f"snap ack {snaps}/snapd_21759.assert",
        f"snap install {snaps}/snapd_21759.snap",
        f"snap ack {snaps}/core20_2434.assert",
        f"snap install {snaps}/core20_2434.snap",
        f"snap ack {snaps}/microk8s_7229.assert",
        f"snap install {snaps}/microk8s_7229.snap --classic",
    ]
    assert set(host.state("snap")["installed"]) == {"snapd", "core20", "microk8s"}
    again = host.run("install", env=env)
    assert not again.has("snap install") and not again.has("snap ack")


def test_base_snap_already_present_is_kept(host):
    env = bundle(host)
    host.fake_cmd("snap", "ack", str(host.p(f"{SNAP_DIR}/core20_2434.assert")))
    host.fake_cmd("snap", "install", str(host.p(f"{SNAP_DIR}/core20_2434.snap")))
    res = host.run("install", env=env)
    assert res.count("snap install") == 1 and res.has(f"snap install {host.p(SNAP_DIR)}/microk8s_7229.snap")
    assert "core20 rev 2434 already installed, skipping" in res.stderr


def test_online_install_tracks_the_channel(host):
    # readiness is ready.sh's: install.sh does not even read its timeout
    env = {"JHUB_MODE": "online", "JHUB_CHANNEL": "1.32", "JHUB_WAIT_READY_TIMEOUT": "not read here"}
    res = host.run("install", env=env)
    assert not res.has("microk8s status")
    assert res.has("snap install microk8s --classic --channel=1.32/stable")
    assert not res.has("snap ack")
    again = host.run("install", env=env)
    assert not again.has("snap install") and not again.has("snap refresh")
    assert "microk8s 1.32/stable already installed (rev 7964), skipping" in again.stderr
    # the config moves to the next channel: jhub installed it, so it refreshes
    up = host.run("install", env={**env, "JHUB_CHANNEL": "1.33/stable"})
    assert up.has("snap refresh microk8s --channel=1.33/stable")
    assert record(host)["revision"] == "8100" and record(host)["origin"] == "jhub"


def test_containerd_that_never_answers_is_reported_and_remembered(host):
    env = bundle(host, JHUB_CONTAINERD_TIMEOUT="1")
    host.set_state("microk8s", containerd_down=True)
    res = host.run("install", env=env, fails=True)
    assert ("microk8s rev 7229 is installed on gpu02 but its containerd does not answer after 1s "
            "('microk8s ctr version' fails)") in res.stderr
    assert "sudo snap logs -n 50 microk8s.daemon-containerd" in res.stderr
    assert "set reset to a new value" in res.stderr and "on jhub:nodes entry gpu02" in res.stderr
    # jhub's install is known as jhub's, and the failed wait is remembered for a later reset
    assert record(host)["origin"] == "jhub"
    assert "install.sh: containerd did not answer within 1s" in host.read("/var/lib/jhub/not-ready")


def test_half_installed_node_is_kept_without_reset_and_reset_once_with_it(host):
    env = bundle(host)
    host.run("install", env=env)
    # no images yet: never ready
    host.run("ready", env=ready_env(), fails=True)
    assert host.p("/var/lib/jhub/not-ready").exists()

    res = host.run("install", env=env)
    assert not res.has("snap remove") and not res.has("snap install")
    assert "was installed by jhub but has never been ready" in res.stderr and "keeping it" in res.stderr

    res = host.run("install", env={**env, "JHUB_RESET_ID": "2025-06-01"})
    lines = res.lines()
    assert lines.index("snap remove microk8s --purge") < lines.index(
        f"snap install {host.p(SNAP_DIR)}/microk8s_7229.snap --classic")
    resets = host.read("/var/lib/jhub/resets")
    assert resets.startswith("2025-06-01 ") and "install: remove microk8s with --purge" in resets
    assert not host.p("/var/lib/jhub/not-ready").exists()
    assert record(host)["origin"] == "jhub"

    # still broken: the same reset value permits nothing more, and says what to do
    host.run("ready", env=ready_env(), fails=True)
    before = host.snapshot()
    again = host.run("install", env={**env, "JHUB_RESET_ID": "2025-06-01"})
    assert not again.has("snap remove") and not again.has("snap install")
    assert ("reset '2025-06-01' was already used on this host" in again.stderr
            and "remove or change reset on jhub:nodes entry gpu02" in again.stderr)
    assert host.snapshot() == before

    # a new value permits one more reset
    res = host.run("install", env={**env, "JHUB_RESET_ID": "2025-06-02"})
    assert res.count("snap remove microk8s --purge") == 1
    assert len(host.read("/var/lib/jhub/resets").splitlines()) == 2


def test_reset_is_not_spent_on_a_node_that_has_not_failed_yet(host):
    # installed, but the readiness wait has not run yet (images come first): nothing to reset
    env = bundle(host, JHUB_RESET_ID="first")
    host.run("install", env=env)
    res = host.run("install", env=env)
    assert not res.has("snap remove")
    assert not host.p("/var/lib/jhub/resets").exists()


def test_a_node_that_was_ready_once_is_never_purged(host):
    env = bundle(host)
    host.run("install", env=env)
    host.seed_node_images()
    host.run("ready", env=ready_env())
    assert host.p("/var/lib/jhub/ready-once").exists()
    # later it is slow or broken; a reset value is in the config
    host.set_state("microk8s", never_ready=True)
    res = host.run("ready", env=ready_env(), fails=True)
    assert "was ready before, so jhub leaves it as it is" in res.stderr
    res = host.run("install", env={**env, "JHUB_RESET_ID": "please"})
    assert not res.has("snap remove") and not res.has("snap install")
    assert not host.p("/var/lib/jhub/resets").exists()


def test_microk8s_not_installed_by_jhub_is_refused_unless_reset(host):
    env = bundle(host)
    host.install_microk8s("6000")  # someone else's microk8s
    before = host.snapshot()
    res = host.run("install", env=env, fails=True)
    assert ("microk8s rev 6000 (tracking -) is already installed on gpu02 but not by jhub, and the config asks "
            "for rev 7229") in res.stderr
    assert "Remove it (sudo snap remove --purge microk8s) or set reset to a new value" in res.stderr
    assert not res.has("snap install") and not res.has("snap remove")
    assert host.snapshot() == before

    res = host.run("install", env={**env, "JHUB_RESET_ID": "r1"})
    lines = res.lines()
    assert lines.index("snap remove microk8s --purge") < lines.index(
        f"snap install {host.p(SNAP_DIR)}/microk8s_7229.snap --classic")
    assert record(host)["origin"] == "jhub"


def test_same_microk8s_installed_by_hand_is_adopted_and_never_moved(host):
    env = bundle(host)
    host.install_microk8s("7229")
    res = host.run("install", env=env)
    assert not res.has("snap install") and not res.has("snap remove")
    assert record(host) == {"mode": "air-gapped", "channel": "1.32/stable", "revision": "7229", "origin": "adopted"}
    assert "adopting it (jhub never refreshes or removes an adopted MicroK8s)" in res.stderr
    before = host.snapshot()
    again = host.run("install", env=env)
    assert host.snapshot() == before and "(adopted: installed outside jhub) matches the config" in again.stderr

    # the config moves on: an adopted MicroK8s is not refreshed; the error says what to do
    newer = bundle(host, mk8s_rev="7300")
    before = host.snapshot()
    res = host.run("install", env=newer, fails=True)
    assert not res.has("snap install") and not res.has("snap remove") and not res.has("snap refresh microk8s")
    assert ("microk8s rev 7229 (tracking -) on gpu02 was installed outside jhub (adopted), so jhub never refreshes "
            "or removes it, and the config now asks for rev 7300") in res.stderr
    assert ("sudo snap ack /var/lib/jhub/bundle/snaps/microk8s_7300.assert && "
            "sudo snap install /var/lib/jhub/bundle/snaps/microk8s_7300.snap --classic") in res.stderr
    assert host.snapshot() == before

    res = host.run("install", env={**newer, "JHUB_RESET_ID": "move-to-7300"})
    assert res.has("snap remove microk8s --purge")
    assert record(host)["revision"] == "7300" and record(host)["origin"] == "jhub"


def test_adopted_online_microk8s_gets_the_refresh_command(host):
    host.fake_cmd("snap", "install", "microk8s", "--classic", "--channel=1.32/stable")
    env = {"JHUB_MODE": "online", "JHUB_CHANNEL": "1.32/stable"}
    host.run("install", env=env)
    assert record(host)["origin"] == "adopted"
    res = host.run("install", env={**env, "JHUB_CHANNEL": "1.33/stable"}, fails=True)
    assert "Move it yourself (sudo snap refresh microk8s --channel=1.33/stable)" in res.stderr
    assert not res.has("snap refresh microk8s")


def test_record_from_an_earlier_jhub_counts_as_ready(host):
    env = bundle(host)
    host.run("install", env=env)
    host.write(RECORD, "mode=air-gapped\nchannel=1.32/stable\nrevision=7229\n")  # no origin line
    host.write("/var/lib/jhub/not-ready", "2025-01-01T00:00:00Z ready.sh: slow\n")
    res = host.run("install", env={**env, "JHUB_RESET_ID": "x"})
    assert not res.has("snap remove")
    assert "recorded as ready by an earlier jhub" in res.stderr
    assert host.read("/var/lib/jhub/ready-once").startswith("revision=7229\n")
    assert record(host)["origin"] == "jhub"


def test_missing_or_bad_bundle_files_and_bad_values_are_named(host):
    env = bundle(host)
    host.p(f"{SNAP_DIR}/microk8s_7229.snap").unlink()
    res = host.run("install", env=env, fails=True)
    assert "snap file /var/lib/jhub/bundle/snaps/microk8s_7229.snap is missing on gpu02" in res.stderr
    assert res.calls == []

    env = bundle(host)
    host.write(f"{SNAP_DIR}/microk8s_7229.assert", "type: account-key\n")
    res = host.run("install", env=env, fails=True)
    assert "microk8s_7229.assert has no snap-revision header" in res.stderr

    res = host.run("install", env={**bundle(host), "JHUB_MODE": "offline"}, fails=True)
    assert "JHUB_MODE must be air-gapped or online, got 'offline'" in res.stderr
    swapped = "microk8s microk8s_7229.snap microk8s_7229.assert\ncore20 core20_2434.snap core20_2434.assert"
    res = host.run("install", env={**bundle(host), "JHUB_SNAPS": swapped}, fails=True)
    assert "JHUB_SNAPS must end with the microk8s line" in res.stderr
    twice = "microk8s microk8s_7229.snap microk8s_7229.assert\n" * 2
    res = host.run("install", env={**bundle(host), "JHUB_SNAPS": twice}, fails=True)
    assert "JHUB_SNAPS lists microk8s more than once" in res.stderr
    res = host.run("install", env={**bundle(host), "JHUB_RESET_ID": "yes please"}, fails=True)
    assert "JHUB_RESET_ID must be empty or 1-128 letters" in res.stderr
    res = host.run("install", env={**bundle(host), "JHUB_CONTAINERD_TIMEOUT": "5m"}, fails=True)
    assert "JHUB_CONTAINERD_TIMEOUT must be a whole number of seconds, got '5m'" in res.stderr
    assert not any(c.line.startswith("snap install") for c in host.calls())


def test_old_snapd_without_hold_still_installs(host):
    host.set_state("snap", hold_unsupported=True)
    res = host.run("install", env=bundle(host))
    assert "could not hold automatic refreshes of microk8s" in res.stderr
    assert res.has("microk8s ctr version")


KUBELET = "/var/snap/microk8s/current/args/kubelet"
PROXY = "/var/snap/microk8s/current/args/kube-proxy"


@pytest.mark.parametrize("hostname, name", [
    ("gpu02.lab.example.org", "gpu02.lab.example.org"),
    ("GPU02.Lab.Example.ORG", "gpu02.lab.example.org"),
    ("GPU02", "gpu02"),
])
def test_a_node_named_like_its_host_keeps_the_kubelets_own_name(host, hostname, name):
    host.nodename = hostname
    res = host.run("install", env=bundle(host, JHUB_NODE_NAME=name))
    assert "--hostname-override" not in host.read(KUBELET) and "--hostname-override" not in host.read(PROXY)
    assert not res.has("snap restart")
    assert f"the kubelet already registers this node as {name}" in res.stderr


def test_a_name_that_is_not_the_hostname_is_given_to_the_kubelet_and_kube_proxy(host):
    host.nodename = "server-7.campus.example.edu"
    env = bundle(host, JHUB_NODE_NAME="gpu02")
    res = host.run("install", env=env)
    assert host.read(KUBELET).endswith("--hostname-override=gpu02\n")
    assert host.read(PROXY).endswith("--hostname-override=gpu02\n")
    assert res.count("snap restart microk8s.daemon-kubelite") == 1
    assert "the kubelet registers this node as gpu02 (--hostname-override" in res.stderr

    before = host.snapshot()
    again = host.run("install", env=env)
    assert host.snapshot() == before and not again.has("snap restart")

    # renamed back to the host's own name: the override goes again
    res = host.run("install", env=bundle(host, JHUB_NODE_NAME="server-7.campus.example.edu"))
    assert "--hostname-override" not in host.read(KUBELET) and "--hostname-override" not in host.read(PROXY)
    assert res.count("snap restart microk8s.daemon-kubelite") == 1


def test_a_long_snap_install_reports_progress(host):
    host.set_state("snap", install_seconds=2.5)
    res = host.run("install", env=bundle(host, JHUB_PROGRESS_INTERVAL="1"))
    progress = [line for line in res.stderr.splitlines() if "still running after" in line]
    assert any(line.startswith("jhub[install]: installing microk8s: still running after ") for line in progress)
    assert any(line.startswith("jhub[install]: installing core20: still running after ") for line in progress)
    assert "installed microk8s rev 7229" in res.stderr
