"""install.sh: offline snap install (ack + install), online install, refresh hold, wait-ready, and
the reports for half-installed or foreign MicroK8s."""

import pytest

SNAP_DIR = "/var/lib/jhub/bundle/snaps"


def bundle(host, core_rev="2434", mk8s_rev="7229"):
    for name, rev in (("core20", core_rev), ("microk8s", mk8s_rev)):
        host.write(f"{SNAP_DIR}/{name}_{rev}.snap", f"{name} snap payload")
        host.write(f"{SNAP_DIR}/{name}_{rev}.assert",
                   f"type: account-key\n\ntype: snap-declaration\nsnap-name: {name}\n\n"
                   f"type: snap-revision\nsnap-revision: {rev}\nsnap-id: abc\n")
    return {
        "JHUB_MODE": "air-gapped",
        "JHUB_CHANNEL": "1.32/stable",
        "JHUB_SNAP_DIR": SNAP_DIR,
        "JHUB_SNAPS": f"core20 core20_{core_rev}.snap core20_{core_rev}.assert\n"
                      f"microk8s microk8s_{mk8s_rev}.snap microk8s_{mk8s_rev}.assert\n",
        "JHUB_NODE_NAME": "gpu02",
        "JHUB_WAIT_READY_TIMEOUT": "30",
    }


@pytest.mark.parametrize("style", ["direct", "component"])
def test_air_gapped_install_then_second_run_installs_nothing(host, style):
    host.component_style = style == "component"
    env = bundle(host)
    res = host.run("install", env=env)
    snaps = str(host.p(SNAP_DIR))
    assert res.stdout == ""
    assert [c for c in res.lines() if not c.startswith("snap list")] == [
        f"snap ack {snaps}/core20_2434.assert",
        f"snap install {snaps}/core20_2434.snap",
        f"snap ack {snaps}/microk8s_7229.assert",
        f"snap install {snaps}/microk8s_7229.snap --classic",
        "snap refresh --hold=forever microk8s",
        "microk8s status --wait-ready --timeout 30",
    ]
    assert host.read("/var/lib/jhub/microk8s.installed") == "mode=air-gapped\nchannel=1.32/stable\nrevision=7229\n"
    assert "installed microk8s rev 7229 from /var/lib/jhub/bundle/snaps/microk8s_7229.snap" in res.stderr
    assert "microk8s is ready" in res.stderr

    before = host.snapshot()
    again = host.run("install", env=env)
    assert not again.has("snap install") and not again.has("snap ack") and not again.has("snap refresh")
    assert host.snapshot() == before
    assert "microk8s rev 7229 already installed, skipping" in again.stderr
    assert "automatic refreshes of microk8s already held" in again.stderr


def test_base_snap_already_present_is_kept(host):
    env = bundle(host)
    host.fake_cmd("snap", "ack", str(host.p(f"{SNAP_DIR}/core20_2434.assert")))
    host.fake_cmd("snap", "install", str(host.p(f"{SNAP_DIR}/core20_2434.snap")))
    res = host.run("install", env=env)
    assert res.count("snap install") == 1 and res.has(f"snap install {host.p(SNAP_DIR)}/microk8s_7229.snap")
    assert "core20 rev 2434 already installed, skipping" in res.stderr


def test_online_install_tracks_the_channel(host):
    env = {"JHUB_MODE": "online", "JHUB_CHANNEL": "1.32", "JHUB_WAIT_READY_TIMEOUT": "30"}
    res = host.run("install", env=env)
    assert res.has("snap install microk8s --classic --channel=1.32/stable")
    assert not res.has("snap ack")
    again = host.run("install", env=env)
    assert not again.has("snap install") and not again.has("snap refresh")
    assert "microk8s 1.32/stable already installed (rev 7964), skipping" in again.stderr
    # the config moves to the next channel: jhub installed it, so it refreshes
    up = host.run("install", env={**env, "JHUB_CHANNEL": "1.33/stable"})
    assert up.has("snap refresh microk8s --channel=1.33/stable")
    assert "revision=8100" in host.read("/var/lib/jhub/microk8s.installed")


def test_half_installed_node_is_reported_with_what_to_do(host):
    env = bundle(host)
    host.set_state("microk8s", never_ready=True)
    res = host.run("install", env=env, fails=True)
    assert res.has("snap install")
    assert ("microk8s rev 7229 is installed on gpu02 but not ready after 30s (half-installed or broken)"
            in res.stderr)
    assert "set reset: true on jhub:nodes entry gpu02" in res.stderr
    assert not host.p("/var/lib/jhub/microk8s.installed").exists()
    # a rerun without reset does not touch it (no remove, no install) and says the same
    again = host.run("install", env=env, fails=True)
    assert not again.has("snap install") and not again.has("snap remove")
    assert "half-installed or broken" in again.stderr


def test_reset_reinstalls_a_half_installed_node(host):
    env = bundle(host)
    host.set_state("microk8s", never_ready=True)
    host.run("install", env=env, fails=True)
    host.set_state("microk8s", never_ready=False)
    # ready again by itself: reset is permission, not an order; nothing is removed
    res = host.run("install", env={**env, "JHUB_RESET": "1"})
    assert not res.has("snap remove")

    host.set_state("microk8s", never_ready=True)
    res = host.run("install", env={**env, "JHUB_RESET": "1"}, fails=True)
    assert res.lines().index("snap remove microk8s --purge") < res.lines().index(
        f"snap install {host.p(SNAP_DIR)}/microk8s_7229.snap --classic")
    assert "still not ready" in res.stderr


def test_microk8s_not_installed_by_jhub_is_refused_unless_reset(host):
    env = bundle(host)
    host.install_microk8s("6000")  # someone else's microk8s
    before = host.snapshot()
    res = host.run("install", env=env, fails=True)
    assert ("microk8s rev 6000 (tracking -) is already installed on gpu02 but not by jhub, and the config asks "
            "for rev 7229") in res.stderr
    assert "set reset: true on jhub:nodes entry gpu02" in res.stderr
    assert not res.has("snap install") and not res.has("snap remove")
    assert host.snapshot() == before

    res = host.run("install", env={**env, "JHUB_RESET": "1"})
    lines = res.lines()
    assert lines.index("snap remove microk8s --purge") < lines.index(f"snap install {host.p(SNAP_DIR)}/microk8s_7229.snap --classic")


def test_same_microk8s_installed_by_hand_is_adopted(host):
    env = bundle(host)
    host.install_microk8s("7229")
    res = host.run("install", env=env)
    assert not res.has("snap install") and not res.has("snap remove")
    assert "revision=7229" in host.read("/var/lib/jhub/microk8s.installed")


def test_missing_or_bad_bundle_files_are_named(host):
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
    res = host.run("install", env={**bundle(host), "JHUB_SNAPS": "microk8s microk8s_7229.snap microk8s_7229.assert\ncore20 core20_2434.snap core20_2434.assert"}, fails=True)
    assert "JHUB_SNAPS must end with the microk8s line" in res.stderr


def test_old_snapd_without_hold_still_installs(host):
    host.set_state("snap", hold_unsupported=True)
    res = host.run("install", env=bundle(host))
    assert "could not hold automatic refreshes of microk8s" in res.stderr
    assert res.has("microk8s status --wait-ready")
