"""The README's first run, as an admin does it: `git clone`, then `./scripts/up.sh`, in the clone (never
this checkout), on machines whose host names are an FQDN, upper case, or not the name the admin gives the
node.

No Pulumi CLI exists here, so `pulumi` is tests/program/fakes/pulumi: it checks what up.sh set up for it
(local backend folder, passphrase, selected stack, the .venv of Pulumi.yaml) and runs the clone's program
under the clone's Pulumi mocks, then the local node's host steps as the program wrote them, against the
host fakes (snap, microk8s, uname) in a temporary root. The clone's .venv is made beforehand with this
venv's packages on its path (pip would otherwise download every requirement): up.sh's own
`pip install -r requirements.txt` then finds them all installed, offline.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.program import ROOT

sys.path.insert(0, str(ROOT / "tests" / "hosts"))
from hostkit import FAKES, Host  # noqa: E402

PULUMI_FAKES = ROOT / "tests" / "program" / "fakes"
STEPS = ("prepare", "install", "node_address", "ready", "addons", "labels", "kubeconfig")


def clone_checkout(target: Path) -> Path:
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout, so there is nothing to clone")
    done = subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return target


def prepare_venv(clone: Path) -> None:
    """A venv in the clone that sees this test venv's packages (a .pth file), as up.sh leaves it after
    installing requirements.txt."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(clone / ".venv")], check=True)
    pure = subprocess.run([str(clone / ".venv/bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(pure, "jhub-test-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("hostname, configured, name", [
    ("gpu01.lab.example.org", None, "gpu01.lab.example.org"),  # an FQDN: the node is all of it
    ("GPU01", None, "gpu01"),                                  # upper case: lower-cased, as the kubelet does
    ("server-7.campus.example.edu", "jhub-cp", "jhub-cp"),     # the admin names the node otherwise
])
def test_up_sh_from_a_clean_clone(tmp_path, hostname, configured, name):
    if os.geteuid() != 0:
        pytest.skip("up.sh needs root or passwordless sudo, and the host steps run as root")
    clone = clone_checkout(tmp_path / "jhub")
    assert not (clone / ".venv").exists() and not (clone / ".pulumi").exists(), "a clean clone"
    if configured:
        stack = clone / "Pulumi.dev.yaml"
        text = stack.read_text()
        assert text.count("    - host: local") == 1
        stack.write_text(text.replace("    - host: local", f"    - name: {configured}\n      host: local"))
    prepare_venv(clone)

    (tmp_path / "node").mkdir()
    node = Host(tmp_path / "node")
    node.nodename = hostname
    node.write("/etc/hosts", "127.0.0.1 localhost\n")
    node.set_state("microk8s", kubelet_registers=True)
    node.seed_node_images()  # online: the node pulls Calico and pause itself
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "buildah").write_text("#!/bin/sh\necho 'fake buildah: not run by this test' >&2\nexit 1\n")
    (tools / "buildah").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    report, log = tmp_path / "report.json", tmp_path / "pulumi-calls.jsonl"
    env = node.env({
        "PATH": f"{PULUMI_FAKES}:{tools}:{FAKES}:{os.environ['PATH']}",
        "HOME": str(home),
        "FAKE_HOSTNAME": hostname,
        "FAKE_PULUMI_REPORT": str(report),
        "FAKE_PULUMI_LOG": str(log),
        "FAKE_PULUMI_RUN_SCRIPTS": " ".join(STEPS),
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "JHUB_CONTAINERD_TIMEOUT": "30",
    })
    for name_ in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        env.pop(name_, None)
    done = subprocess.run(["./scripts/up.sh"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]

    # up.sh set up what `pulumi` needs, in the clone and the admin's home, and nothing in this checkout
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["argv"] for c in calls] == [["stack", "select", "--create", "dev", "--non-interactive"], ["up", "--yes"]]
    assert all(c["cwd"] == str(clone) and c["backend"] == f"file://{clone}/.pulumi" for c in calls)
    passphrase = home / ".config/jhub/dev.passphrase"
    assert passphrase.stat().st_mode & 0o777 == 0o600 and len(passphrase.read_text()) == 48
    assert f"PULUMI_CONFIG_PASSPHRASE_FILE=\"{passphrase}\"" in done.stderr
    assert "pulumi stack output hubAdminPasswords --show-secrets" in done.stderr

    result = json.loads(report.read_text())
    assert result["project"] == str(clone) and result["error"] is None
    hosts = [r["name"] for r in result["resources"] if r["type"] == "jhub:hosts:Host"]
    assert hosts == [name]
    ran = [r["script"] for r in result["ran"]]
    # the chain up to the addons is ordered by its dependencies; labels and kubeconfig both wait only for the
    # addons, so the engine runs them in either order
    assert sorted(ran) == sorted(STEPS) and ran[:5] == list(STEPS[:5]), ran
    assert all(r["name"].startswith(f"{name}-") for r in result["ran"])

    # the host steps agree with the kubelet on the node's name: the node registered under it has its labels
    nodes = node.state("microk8s")["nodes"]
    assert list(nodes) == [name]
    facts = next(r["stdout"] for r in result["ran"] if r["script"] == "ready")
    assert f'"hostname":"{hostname}"' in facts and '"running":true' in facts
    assert not (ROOT / ".pulumi" / "jhub-fake-selected-stack").exists()
    shutil.rmtree(clone / ".venv")
