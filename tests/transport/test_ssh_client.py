"""The admin-side SSH steps (bundle upload, best-effort removal steps) against a real OpenSSH server.

A throwaway sshd listens on 127.0.0.1 with its own host key and authorized key; the steps' shell text runs
with /bin/sh exactly as pulumi-command's local Command runs it, the key on stdin.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from components.cluster.ssh_client import SshParams, _known_hosts_line, best_effort_script, upload_script

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(SSHD) and os.geteuid() == 0 and shutil.which("ssh")),
    reason="needs root, the OpenSSH client and server (apt-get install openssh-server openssh-client)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    base = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "user")], check=True)
    (base / "authorized_keys").write_text((base / "user.pub").read_text())
    os.chmod(base / "authorized_keys", 0o600)
    port = _free_port()
    (base / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPidFile {base / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(base / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    host_key = " ".join((base / "host.pub").read_text().split()[:2])
    yield {"port": port, "host_key": host_key, "key": (base / "user").read_text(), "base": base}
    proc.terminate()
    proc.wait(timeout=10)


def params(sshd, **changes) -> SshParams:
    values = dict(host="127.0.0.1", port=sshd["port"], user="root", private_key=sshd["key"], password=None,
                  host_key=sshd["host_key"], agent_socket=None, connect_timeout=5, dial_attempts=1)
    values.update(changes)
    return SshParams(**values)


def run_sh(text: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", text], input=stdin, capture_output=True, text=True, timeout=60)


def test_best_effort_runs_the_command_on_a_reachable_node(sshd, tmp_path):
    marker = tmp_path / "ran"
    ssh = params(sshd)
    done = run_sh(best_effort_script(ssh, "gpu02", f"echo 'left; the cluster' > {marker}"), ssh.private_key)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "left; the cluster\n", "the remote command arrives whole, quotes and all"


def test_best_effort_skips_an_unreachable_node(sshd):
    ssh = params(sshd, port=_free_port())
    done = run_sh(best_effort_script(ssh, "gpu09", "true"), ssh.private_key)
    assert done.returncode == 0
    assert "gpu09" in done.stderr and "unreachable" in done.stderr


def test_best_effort_fails_on_a_wrong_host_key_instead_of_skipping(sshd, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    ssh = params(sshd, host_key=wrong)
    done = run_sh(best_effort_script(ssh, "gpu02", f"touch {tmp_path / 'must-not-run'}"), ssh.private_key)
    assert done.returncode != 0, "a host that answers with another key is an attack or a mistake, never skipped"
    assert not (tmp_path / "must-not-run").exists()


def test_best_effort_propagates_a_failing_command(sshd):
    ssh = params(sshd)
    done = run_sh(best_effort_script(ssh, "gpu02", "echo no >&2; exit 3"), ssh.private_key)
    assert done.returncode == 3


def test_upload_copies_only_what_the_node_lacks(sshd, tmp_path):
    local = tmp_path / "bundle"
    (local / "snaps").mkdir(parents=True)
    (local / "images").mkdir()
    files = {"snaps/microk8s.snap": b"snap-v1", "images/pause.tar": b"pause", "images/calico node.tar": b"c"}
    for rel, data in files.items():
        (local / rel).write_bytes(data)
    remote = tmp_path / "node" / "bundle"
    manifest = [(local / rel, rel, hashlib.sha256(data).hexdigest()) for rel, data in files.items()]
    ssh = params(sshd)
    first = run_sh(upload_script(ssh, "gpu02", manifest, str(remote)), ssh.private_key)
    assert first.returncode == 0, first.stderr
    assert all((remote / rel).read_bytes() == data for rel, data in files.items())
    assert first.stderr.count("copied") == 3 and not list(remote.rglob("*.part"))

    again = run_sh(upload_script(ssh, "gpu02", manifest, str(remote)), ssh.private_key)
    assert again.returncode == 0 and "copied" not in again.stderr and again.stderr.count("already there") == 3

    (local / "snaps/microk8s.snap").write_bytes(b"snap-v2")
    manifest[0] = (local / "snaps/microk8s.snap", "snaps/microk8s.snap", hashlib.sha256(b"snap-v2").hexdigest())
    third = run_sh(upload_script(ssh, "gpu02", manifest, str(remote)), ssh.private_key)
    assert third.returncode == 0 and third.stderr.count("copied") == 1
    assert (remote / "snaps/microk8s.snap").read_bytes() == b"snap-v2"


def test_secret_file_is_gone_after_the_step(sshd, tmp_path):
    ssh = params(sshd)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = subprocess.run(["/bin/sh", "-c", best_effort_script(ssh, "gpu02", "true")], input=ssh.private_key,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stderr
    assert list(tmp.iterdir()) == [], "the key's temporary folder must be removed"


def test_known_hosts_line_follows_openssh_port_rules():
    base = dict(host="10.0.0.2", user="u", private_key=None, password=None, host_key="ssh-ed25519 AAAA",
                agent_socket=None, connect_timeout=5, dial_attempts=1)
    assert _known_hosts_line(SshParams(port=22, **base)) == "10.0.0.2 ssh-ed25519 AAAA"
    assert _known_hosts_line(SshParams(port=2222, **base)) == "[10.0.0.2]:2222 ssh-ed25519 AAAA"
