"""admit.sh (control plane), join.sh and leave.sh (worker): join once with a shared token that never
leaks, refuse a node of another cluster, reset only when allowed."""

import os
import shutil
import subprocess
import time

import pytest

from hostkit import HOSTS

TOKEN = "Abcdefghijklmnopqrstuvwxyz012345"  # 32 characters, like the component's random token
FINGERPRINT = "0a1b2c3d4e5f"  # the fake control plane's cluster agent certificate starts so
TOKENS = "/var/snap/microk8s/current/credentials/cluster-tokens.txt"


def join_env(**extra):
    return {"JHUB_CONTROL_PLANE_ADDRESS": "10.0.0.1", "JHUB_CONTROL_PLANE_FINGERPRINT": FINGERPRINT,
            "JHUB_CLUSTER_ID": "lab-1", "JHUB_NODE_NAME": "gpu02",
            "JHUB_JOIN_TIMEOUT": "30", **extra}


def admit_env(**extra):
    return {"JHUB_NODE_NAME": "gpu02", "JHUB_NODE_ADDRESS": "10.0.0.2", **extra}


def assert_token_only_in(res, allowed_prefix):
    """The token is an argument of exactly the microk8s call that needs it: never in any call's
    environment, never in stdout or stderr."""
    assert TOKEN not in res.stdout and TOKEN not in res.stderr
    for call in res.calls:
        assert not any(TOKEN in v for v in call.env.values()), call.line
        if TOKEN in call.line:
            assert call.line.startswith(allowed_prefix), call.line


# -- admit --------------------------------------------------------------------------------------

def token_lines(host):
    return host.read(TOKENS).splitlines()


def test_admit_registers_the_token_once_without_a_command_and_resolves_the_worker(host):
    host.install_microk8s()
    host.write("/etc/hosts", "127.0.0.1 localhost\n")
    start = int(time.time())
    res = host.run("admit", "add", env=admit_env(), stdin=TOKEN + "\n")
    # no microk8s add-node: the token would show in `ps` as its argument
    assert res.calls == []
    assert_token_only_in(res, "never")
    assert res.stdout == ""
    assert host.read("/etc/hosts") == ("127.0.0.1 localhost\n"
                                       "# BEGIN jhub-node gpu02 (managed by jhub; edits inside this block are replaced)\n"
                                       "10.0.0.2 gpu02\n# END jhub-node gpu02\n")
    [line] = token_lines(host)
    token, expiry = line.split("|")
    assert token == TOKEN and start + 172800 <= int(expiry) <= int(time.time()) + 172800
    assert oct(host.p(TOKENS).stat().st_mode & 0o777) == "0o600"
    assert "join token of gpu02 registered in credentials/cluster-tokens.txt until " in res.stderr

    # a second admit with the same token registers nothing
    before = host.snapshot()
    again = host.run("admit", "add", env=admit_env(), stdin=TOKEN + "\n")
    assert again.calls == [] and host.snapshot() == before
    assert "join token of gpu02 already registered for more than a day, skipping" in again.stderr
    third = host.run("admit", "add", env=admit_env(JHUB_NODE_NAME="gpu03", JHUB_NODE_ADDRESS="10.0.0.3"),
                     stdin=TOKEN + "\n")
    assert third.calls == []
    assert "10.0.0.3 gpu03\n# END jhub-node gpu03\n" in host.read("/etc/hosts")
    assert token_lines(host) == [line]


def test_admit_renews_a_stale_token_first_line_and_keeps_the_file_owner_and_mode(host):
    host.install_microk8s()
    other = "Zyxwvutsrqponmlkjihgfedcba987654|9999999999"
    # an expired line for our token comes first (it would refuse every join), a single-use one after
    host.write(TOKENS, f"{TOKEN}|{int(time.time()) - 60}\n{other}\n{TOKEN}", mode=0o640)
    # like MicroK8s's own file: root and a group (as another user: that user and its group)
    owner = (0, 4) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
    os.chown(host.p(TOKENS), *owner)
    res = host.run("admit", "add", env=admit_env(JHUB_TOKEN_TTL="864000"), stdin=TOKEN)
    assert res.calls == []
    lines = token_lines(host)
    assert lines[0] == other and len(lines) == 2
    token, expiry = lines[1].split("|")
    assert token == TOKEN and int(expiry) >= int(time.time()) + 864000 - 5
    st = host.p(TOKENS).stat()
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, *owner)
    assert not list(host.p(TOKENS).parent.glob("*.jhub-*"))  # no temporary file left

    # less than a day left: renewed; more: kept
    host.write(TOKENS, f"{TOKEN}|{int(time.time()) + 3600}\n")
    host.run("admit", "add", env=admit_env(), stdin=TOKEN)
    assert int(token_lines(host)[0].split("|")[1]) > time.time() + 86400
    before = host.snapshot()
    host.run("admit", "add", env=admit_env(), stdin=TOKEN)
    assert host.snapshot() == before

    # a persistent token never expires: left alone
    host.write(TOKENS, "")
    host.write("/var/snap/microk8s/current/credentials/persistent-cluster-tokens.txt", TOKEN + "\n")
    host.run("admit", "add", env=admit_env(), stdin=TOKEN)
    assert host.read(TOKENS) == ""


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)")
def test_admit_puts_the_token_in_no_process_arguments(host, tmp_path):
    """Every program admit.sh starts (date, mktemp, chown, mv, flock...), traced with strace: the token
    is in none of their argument lists or environments."""
    host.install_microk8s()
    host.write(TOKENS, f"{TOKEN}|1\n", mode=0o600)
    trace = tmp_path / "trace"
    env = host.env(admit_env())
    proc = subprocess.run(["strace", "-f", "-s", "4096", "-v", "-e", "trace=execve", "-o", str(trace),
                           "bash", str(HOSTS / "admit.sh"), "add"], input=TOKEN + "\n", env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    execs = [line for line in trace.read_text().splitlines() if "execve(" in line]
    assert any('"mv"' in line for line in execs)  # the trace did see the programs it started
    assert not [line for line in execs if TOKEN in line]
    assert token_lines(host)[0].startswith(TOKEN + "|")
    # revoke (token on stdin) and remove (by the recorded sha256) neither
    for action, stdin in (("revoke", TOKEN + "\n"), ("add", TOKEN + "\n"), ("remove", "")):
        proc = subprocess.run(["strace", "-f", "-s", "4096", "-v", "-e", "trace=execve", "-o", str(trace),
                               "bash", str(HOSTS / "admit.sh"), action], input=stdin, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        execs = [line for line in trace.read_text().splitlines() if "execve(" in line]
        assert any('"sha256sum"' in line for line in execs) and not [line for line in execs if TOKEN in line]
    assert TOKEN not in host.read(TOKENS)


def test_admit_remove_takes_the_node_out(host):
    host.install_microk8s()
    host.write("/etc/hosts", "127.0.0.1 localhost\n")
    host.run("admit", "add", env=admit_env(), stdin=TOKEN)
    host.add_node("gpu02")
    res = host.run("admit", "remove", env={"JHUB_NODE_NAME": "gpu02"})
    assert res.has("microk8s remove-node gpu02 --force")
    assert "gpu02" not in host.state("microk8s")["nodes"]
    assert host.read("/etc/hosts") == "127.0.0.1 localhost\n"
    again = host.run("admit", "remove", env={"JHUB_NODE_NAME": "gpu02"})
    assert not again.has("microk8s remove-node")
    assert "node gpu02 is not in the cluster, nothing to remove" in again.stderr


def test_admit_refuses_a_bad_token_without_echoing_it(host):
    host.install_microk8s()
    secret = "short-secret-value"
    res = host.run("admit", "add", env=admit_env(), stdin=secret + "\n", fails=True)
    assert "stdin line 1 must be the cluster join token" in res.stderr and secret not in res.stderr
    assert res.calls == []
    res = host.run("admit", "rm", env=admit_env(), fails=True)
    assert "usage: admit.sh add|revoke|remove" in res.stderr


# -- join ---------------------------------------------------------------------------------------

def test_join_once_keeps_node_ip_and_token_stays_secret(host):
    host.component_style = True  # as the component runs it: lib.sh prepended, token on stdin
    host.install_microk8s()
    kubelet = host.p("/var/snap/microk8s/current/args/kubelet")
    kubelet.write_text(kubelet.read_text() + "--node-ip=10.0.0.2\n")  # as node_address.sh wrote it
    res = host.run("join", env=join_env(), stdin=TOKEN + "\n")
    assert res.has(f"microk8s join 10.0.0.1:25000/{TOKEN}/{FINGERPRINT} --worker")
    assert_token_only_in(res, "microk8s join 10.0.0.1:25000/")
    assert res.stdout == ""
    assert "jhub[join]: joined cluster lab-1" in res.stderr  # log prefix from the jhub-join $0
    assert host.read("/var/lib/jhub/cluster-id") == "lab-1\n"
    assert host.p("/var/snap/microk8s/current/var/lock/clustered.lock").exists()
    # the join rewrote args/kubelet with the control plane's view; the chosen address is put back
    kubelet = host.read("/var/snap/microk8s/current/args/kubelet")
    assert "--node-ip=10.0.0.2\n" in kubelet and "10.99.0.1" not in kubelet
    assert res.has("snap restart microk8s.daemon-kubelite")

    before = host.snapshot()
    again = host.run("join", env=join_env(), stdin=TOKEN + "\n")
    assert not again.has("microk8s join") and not again.has("snap restart")
    assert host.snapshot() == before
    assert "already joined to cluster lab-1, skipping" in again.stderr


def test_node_of_another_cluster_is_refused_with_advice(host):
    host.install_microk8s()
    host.p("/var/snap/microk8s/current/var/lock/clustered.lock").touch()
    host.write("/var/lib/jhub/cluster-id", "other-lab\n")
    before = host.snapshot()
    res = host.run("join", env=join_env(), stdin=TOKEN, fails=True)
    assert ("gpu02 already belongs to another MicroK8s cluster (jhub cluster id: other-lab). Run "
            "'sudo microk8s leave' on gpu02, or set reset to a new value") in res.stderr
    assert "on jhub:nodes entry gpu02, then run pulumi up again" in res.stderr
    assert not res.has("microk8s join") and not res.has("microk8s leave")
    assert host.snapshot() == before
    assert_token_only_in(res, "never")


def test_reset_leaves_the_other_cluster_once_then_joins(host):
    host.install_microk8s()
    host.p("/var/snap/microk8s/current/var/lock/clustered.lock").touch()
    res = host.run("join", env=join_env(JHUB_RESET_ID="move-gpu02"), stdin=TOKEN)
    lines = res.lines()
    assert lines.index("microk8s leave") < lines.index(f"microk8s join 10.0.0.1:25000/{TOKEN}/{FINGERPRINT} --worker")
    assert host.read("/var/lib/jhub/cluster-id") == "lab-1\n"
    resets = host.read("/var/lib/jhub/resets")
    assert resets.startswith("move-gpu02 ") and "join: leave the other cluster (jhub cluster id: none)" in resets
    assert_token_only_in(res, "microk8s join 10.0.0.1:25000/")

    # joined: the reset value is not needed, and a rerun changes nothing
    before = host.snapshot()
    again = host.run("join", env=join_env(JHUB_RESET_ID="move-gpu02"), stdin=TOKEN)
    assert not again.has("microk8s leave") and host.snapshot() == before

    # the node is moved to another cluster by hand later: the used value permits nothing more
    host.write("/var/lib/jhub/cluster-id", "other-lab\n")
    res = host.run("join", env=join_env(JHUB_RESET_ID="move-gpu02"), stdin=TOKEN, fails=True)
    assert not res.has("microk8s leave") and not res.has("microk8s join")
    assert "reset 'move-gpu02' was already used on this host" in res.stderr
    assert "already belongs to another MicroK8s cluster (jhub cluster id: other-lab)" in res.stderr


def test_no_reset_is_used_when_the_node_needs_none(host):
    host.install_microk8s()
    host.run("join", env=join_env(JHUB_RESET_ID="spare"), stdin=TOKEN)
    assert not host.p("/var/lib/jhub/resets").exists()


def test_standalone_control_plane_with_nodes_is_not_swallowed(host):
    host.install_microk8s()
    host.add_node("gpu02")
    host.add_node("old-worker")
    res = host.run("join", env=join_env(), stdin=TOKEN, fails=True)
    assert "gpu02 is the control plane of its own MicroK8s cluster with 2 nodes" in res.stderr
    assert not res.has("microk8s join")


def test_join_retries_a_failed_attempt_and_redacts_the_token(host):
    host.install_microk8s()
    host.set_state("microk8s", join_fails=1)
    res = host.run("join", env=join_env(JHUB_JOIN_TIMEOUT="60", JHUB_JOIN_RETRY_DELAY="0"), stdin=TOKEN)
    assert res.count("microk8s join") == 2
    assert "join attempt 1 failed" in res.stderr
    assert_token_only_in(res, "microk8s join 10.0.0.1:25000/")


def test_join_that_keeps_failing_stops_with_the_reason_but_not_the_token(host):
    host.install_microk8s()
    host.set_state("microk8s", join_fails=5)
    res = host.run("join", env=join_env(JHUB_JOIN_RETRY_DELAY="0"), stdin=TOKEN, fails=True)
    assert res.count("microk8s join") == 3
    assert "joining 10.0.0.1:25000 failed after 3 tries" in res.stderr
    assert "Failed to join 10.0.0.1:25000/<token>/0a1b2c3d4e5f: the node is not reachable" in res.stderr
    assert_token_only_in(res, "microk8s join 10.0.0.1:25000/")
    assert not host.p("/var/lib/jhub/cluster-id").exists()


def test_join_whose_kubelite_never_starts_is_not_mistaken_for_another_cluster(host):
    host.install_microk8s()
    host.set_state("snap", services={"microk8s.daemon-kubelite": "inactive"})
    res = host.run("join", env=join_env(JHUB_JOIN_TIMEOUT="1"), stdin=TOKEN, fails=True)
    assert "gpu02 joined cluster lab-1, but kubelite is not running after 1s" in res.stderr
    host.set_state("snap", services={})
    again = host.run("join", env=join_env(), stdin=TOKEN)
    assert not again.has("microk8s join") and "already joined to cluster lab-1" in again.stderr


def test_marker_without_clustered_state_rejoins(host):
    host.install_microk8s()
    host.write("/var/lib/jhub/cluster-id", "lab-1\n")
    res = host.run("join", env=join_env(), stdin=TOKEN)
    assert res.count("microk8s join") == 1
    assert "not clustered (left by hand?); joining again" in res.stderr


def test_join_input_errors(host):
    host.install_microk8s()
    res = host.run("join", env=join_env(JHUB_CONTROL_PLANE_ADDRESS="cp.lab"), stdin=TOKEN, fails=True)
    assert "MicroK8s joins by IP" in res.stderr
    res = host.run("join", env=join_env(), stdin="", fails=True)
    assert "stdin line 1 must be the cluster join token" in res.stderr
    assert host.calls() == []


# -- leave --------------------------------------------------------------------------------------

def test_leave_only_our_cluster(host):
    host.install_microk8s()
    host.run("join", env=join_env(), stdin=TOKEN)
    other = host.run("leave", env={"JHUB_CLUSTER_ID": "someone-else"})
    assert not other.has("microk8s leave")
    assert "not joined to cluster someone-else (jhub marker: lab-1), nothing to leave" in other.stderr

    res = host.run("leave", env={"JHUB_CLUSTER_ID": "lab-1"})
    assert res.lines() == ["snap list microk8s", "microk8s leave"]
    assert not host.p("/var/lib/jhub/cluster-id").exists()
    assert not host.p("/var/snap/microk8s/current/var/lock/clustered.lock").exists()

    before = host.snapshot()
    again = host.run("leave", env={"JHUB_CLUSTER_ID": "lab-1"})
    assert again.calls == [] and host.snapshot() == before


def test_parallel_admits_of_different_workers_keep_every_hosts_entry(host):
    """Pulumi runs the admits of different workers in parallel: each edit of /etc/hosts happens under
    the lock, so no worker's entry is lost."""
    from concurrent.futures import ThreadPoolExecutor

    host.install_microk8s()
    host.write("/etc/hosts", "127.0.0.1 localhost\n")
    workers = [(f"gpu{n:02d}", f"10.0.1.{n}") for n in range(2, 14)]
    for attempt in range(3):
        with ThreadPoolExecutor(len(workers)) as pool:
            list(pool.map(lambda w: host.run("admit", "add", env=admit_env(JHUB_NODE_NAME=w[0], JHUB_NODE_ADDRESS=w[1]),
                                             stdin=TOKEN + "\n"), workers))
        hosts = host.read("/etc/hosts")
        missing = [name for name, address in workers if f"\n{address} {name}\n# END jhub-node {name}\n" not in hosts]
        assert missing == [], f"attempt {attempt}: lost {missing}"
        assert hosts.startswith("127.0.0.1 localhost\n")
        assert hosts.count("# BEGIN jhub-node") == len(workers)
    assert len(token_lines(host)) == 1


def test_a_lost_hosts_entry_is_repaired_by_the_next_admit(host):
    host.install_microk8s()
    host.write("/etc/hosts", "127.0.0.1 localhost\n")
    host.run("admit", "add", env=admit_env(), stdin=TOKEN + "\n")
    host.write("/etc/hosts", "127.0.0.1 localhost\n")  # lost (an edit by hand, or a race of an older jhub)
    res = host.run("admit", "add", env=admit_env(), stdin=TOKEN + "\n")
    assert "10.0.0.2 gpu02\n# END jhub-node gpu02\n" in host.read("/etc/hosts")
    assert "/etc/hosts: gpu02 -> 10.0.0.2" in res.stderr



def test_join_keeps_the_node_name_install_gave_the_kubelet(host):
    """`microk8s join` rewrites args/kubelet from the control plane's and drops --hostname-override:
    the name install.sh set is put back, in kube-proxy's arguments too."""
    host.nodename = "server-7.campus.example.edu"
    from test_hosts_install import bundle

    host.run("install", env=bundle(host, JHUB_NODE_NAME="gpu02"))
    res = host.run("join", env=join_env(), stdin=TOKEN + "\n")
    kubelet = host.read("/var/snap/microk8s/current/args/kubelet")
    assert "--hostname-override=gpu02\n" in kubelet and "microk8s-worker" in kubelet
    assert "--hostname-override=gpu02\n" in host.read("/var/snap/microk8s/current/args/kube-proxy")
    assert "kept kubelet --hostname-override=gpu02 after the join" in res.stderr
    assert res.count("snap restart microk8s.daemon-kubelite") == 1



# -- the control plane's fingerprint -------------------------------------------------------------

def test_fingerprint_is_what_microk8s_add_node_prints(host, tmp_path):
    """The first 12 hex digits of the sha256 of server.crt in DER form (MicroK8s's server_cert_check),
    computed here from the PEM file alone."""
    import hashlib
    import ssl

    host.install_microk8s()
    cert = host.p("/var/snap/microk8s/current/certs/server.crt")
    cert.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(cert)], check=True, capture_output=True)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    want = hashlib.sha256(der).hexdigest()[:12]
    res = host.run("fingerprint")
    assert res.stdout == want + "\n" and res.calls == []
    # a chain (the server's certificate first) gives the server's
    cert.write_text(cert.read_text() + cert.read_text())
    assert host.run("fingerprint").stdout == want + "\n"
    cert.write_text("garbage\n")
    res = host.run("fingerprint", fails=True)
    assert "holds no PEM certificate" in res.stderr and res.stdout == ""


def test_fingerprint_without_microk8s_says_so(host):
    res = host.run("fingerprint", fails=True)
    assert "/var/snap/microk8s/current/certs/server.crt is missing" in res.stderr


def test_join_refuses_a_control_plane_with_another_certificate(host):
    host.install_microk8s()
    res = host.run("join", env=join_env(JHUB_CONTROL_PLANE_FINGERPRINT="ffffffffffff"), stdin=TOKEN, fails=True)
    assert "is not the control plane jhub admitted gpu02 on" in res.stderr
    assert_token_only_in(res, "microk8s join 10.0.0.1:25000/")
    assert res.count("microk8s join") == 1, "a wrong server is not asked again"
    assert not host.p("/var/lib/jhub/cluster-id").exists()
    res = host.run("join", env={k: v for k, v in join_env().items() if k != "JHUB_CONTROL_PLANE_FINGERPRINT"},
                   stdin=TOKEN, fails=True)
    assert "JHUB_CONTROL_PLANE_FINGERPRINT is required" in res.stderr and not res.has("microk8s join")
    res = host.run("join", env=join_env(JHUB_CONTROL_PLANE_FINGERPRINT="XYZ"), stdin=TOKEN, fails=True)
    assert "must be 12 to 64 lowercase hex digits" in res.stderr


def test_an_expired_token_is_reported_with_the_way_to_renew_it(host):
    host.install_microk8s()
    host.set_state("microk8s", token_expired=True)
    res = host.run("join", env=join_env(), stdin=TOKEN, fails=True)
    assert "the control plane refused the join token" in res.stderr and "set reset to a new value" in res.stderr
    assert res.count("microk8s join") == 1
    assert_token_only_in(res, "microk8s join 10.0.0.1:25000/")


def test_an_admit_for_a_reset_renews_an_expired_token(host):
    host.install_microk8s()
    host.write(TOKENS, f"{TOKEN}|{int(time.time()) - 3600}\n", mode=0o600)  # the last admit was days ago
    res = host.run("admit", "add", env=admit_env(JHUB_JOIN_ID="2026-12-06"), stdin=TOKEN)
    assert "admitting gpu02 for its join with reset '2026-12-06'" in res.stderr
    assert int(token_lines(host)[0].split("|")[1]) > time.time() + 86400
    res = host.run("admit", "add", env=admit_env(JHUB_JOIN_ID="bad id"), stdin=TOKEN, fails=True)
    assert "JHUB_JOIN_ID must be the worker's reset id" in res.stderr


def test_the_join_digest_of_an_admit_is_checked_and_changes_nothing_else(host):
    host.install_microk8s()
    res = host.run("admit", "add", env=admit_env(JHUB_JOIN_STEP="0123456789abcdef"), stdin=TOKEN)
    assert "registered in credentials/cluster-tokens.txt" in res.stderr
    before = host.snapshot()
    again = host.run("admit", "add", env=admit_env(JHUB_JOIN_STEP="fedcba9876543210"), stdin=TOKEN)
    assert "already registered" in again.stderr and host.snapshot() == before
    for bad in ("xyz", "0123456789ABCDEF", "0123"):
        res = host.run("admit", "add", env=admit_env(JHUB_JOIN_STEP=bad), stdin=TOKEN, fails=True)
        assert ("JHUB_JOIN_STEP must be the digest of the worker's join command (16 hex digits), "
                f"got '{bad}'") in res.stderr
