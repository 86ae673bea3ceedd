"""Defect 2's last case: a worker's join that failed is retried by a later `pulumi up`, days after its
admit. Pulumi then runs the failed join's create again with the inputs it had, and does not run the admit
again (it succeeded; nothing about it changed). So the token the admit registered must still be good then.

The commands are the program's own (three-node stack under the Pulumi mocks: the admit, join and revoke
command text and the token on their stdin), run in fake roots for the control plane and the worker; the
worker's fake `microk8s join` checks the token in the control plane's token files as MicroK8s's cluster
agent does, at a clock three days ahead.
"""

from __future__ import annotations

import re
import subprocess
import sys

import yaml

from hostkit import HOSTS, REPO, Host

sys.path.insert(0, str(REPO))
from tests.support.program import SECRET_SIG, run_program, stack_config  # noqa: E402

THREE = REPO / "tests" / "stacks" / "Pulumi.three.yaml"
DAYS = 24 * 3600
TOKENS = "/var/snap/microk8s/current/credentials/cluster-tokens.txt"


def _plain(value):
    return value["value"] if isinstance(value, dict) and SECRET_SIG in value else value


def step(run, name: str, field: str = "create") -> tuple[str, str]:
    """A registered command's text (run from hosts/ instead of /var/lib/jhub/scripts/<unit>/) and stdin."""
    inputs = run.named(name).inputs
    text = re.sub(r"/var/lib/jhub/scripts/[0-9a-f]{16}/", f"{HOSTS}/", _plain(inputs[field]))
    return text, _plain(inputs.get("stdin") or "")


def execute(host: Host, command: tuple[str, str], fails: bool = False) -> subprocess.CompletedProcess:
    text, stdin = command
    env = host.env({"JHUB_JOIN_RETRY_DELAY": "0"})
    done = subprocess.run(["bash", "-c", text], env=env, input=stdin, capture_output=True, text=True,
                          cwd=host.fake, timeout=300)
    assert (done.returncode != 0) == fails, done.stderr
    return done


def test_a_join_retried_days_after_its_admit_still_joins_and_then_the_token_is_revoked(tmp_path):
    run = run_program(stack_config(THREE))
    assert run.error is None, run.error
    admit, join = step(run, "gpu02-admit"), step(run, "gpu02-join")

    (tmp_path / "cp").mkdir()
    (tmp_path / "worker").mkdir()
    cp, worker = Host(tmp_path / "cp"), Host(tmp_path / "worker")
    cp.install_microk8s()
    worker.install_microk8s()
    worker.set_state("microk8s", control_plane_root=str(cp.root))

    execute(cp, admit)
    # the worker's join fails (the node is not reachable from the control plane's agent, say)
    worker.set_state("microk8s", join_fails=3)
    execute(worker, join, fails=True)
    # three days later the admin fixed it and runs `pulumi up`: Pulumi runs the same join create again
    worker.set_state("microk8s", join_fails=0, clock_offset=3 * DAYS)
    joined = execute(worker, join)
    assert "joined cluster" in joined.stderr, joined.stderr
    assert worker.p("/var/snap/microk8s/current/var/lock/clustered.lock").exists()

    # then the control plane closes the door: the token joins no one any more
    revoke = step(run, "gpu02-token-revoke")
    assert join[1] == admit[1] == revoke[1] and len(admit[1]) == 32, "one token, the worker's own, on stdin"
    assert step(run, "gpu03-admit")[1] != admit[1], "each worker has its own token"
    done = execute(cp, revoke)
    assert "join token of gpu02 revoked" in done.stderr
    assert admit[1] not in cp.read(TOKENS)
    assert not cp.p("/var/lib/jhub/join-tokens/gpu02.sha256").exists()
    again = execute(cp, revoke)
    assert "nothing to revoke" in again.stderr

    (tmp_path / "other").mkdir()
    other = Host(tmp_path / "other")
    other.install_microk8s()
    other.set_state("microk8s", control_plane_root=str(cp.root))
    refused = execute(other, join, fails=True)
    assert "the control plane refused the join token" in refused.stderr
    assert admit[1] not in refused.stderr


def test_removing_the_worker_revokes_a_token_it_never_used(tmp_path):
    """A worker that never joined and leaves the stack: its admit's delete takes its token out too."""
    run = run_program(stack_config(THREE))
    assert run.error is None, run.error
    (tmp_path / "cp").mkdir()
    cp = Host(tmp_path / "cp")
    cp.install_microk8s()
    execute(cp, step(run, "gpu02-admit"))
    execute(cp, step(run, "gpu03-admit"))
    gpu02, gpu03 = step(run, "gpu02-admit")[1], step(run, "gpu03-admit")[1]
    assert gpu02 in cp.read(TOKENS) and gpu03 in cp.read(TOKENS)
    text, _ = step(run, "gpu02-admit", "delete")
    removed = execute(cp, (text, ""))
    assert "join token of gpu02 revoked" in removed.stderr
    assert gpu02 not in cp.read(TOKENS) and gpu03 in cp.read(TOKENS), "the other worker's token stays"


def test_a_join_run_again_for_a_change_gets_its_token_registered_again_and_revoked_after(tmp_path):
    """The token is revoked once the join succeeded. A later change that runs the join again (here another
    join timeout; a new join.sh, a reset or another fingerprint do the same) changes the admit's and the
    revoke's text too, as they carry the join's digest: Pulumi runs the admit before the join and the revoke
    after it. A worker that left its cluster by hand meanwhile joins again, and the door closes behind it."""
    config = yaml.safe_load(THREE.read_text())["config"]
    before = run_program(stack_config(THREE))
    assert before.error is None, before.error
    same = run_program(stack_config(THREE))
    assert all(step(before, n) == step(same, n) for n in ("gpu02-admit", "gpu02-join", "gpu02-token-revoke"))
    after = run_program(stack_config(THREE, {"jhub:microk8s": {**config["jhub:microk8s"], "joinTimeout": "15m"}}))
    assert after.error is None, after.error

    (tmp_path / "cp").mkdir()
    (tmp_path / "worker").mkdir()
    cp, worker = Host(tmp_path / "cp"), Host(tmp_path / "worker")
    cp.install_microk8s()
    worker.install_microk8s()
    worker.set_state("microk8s", control_plane_root=str(cp.root))
    for name, node in (("gpu02-admit", cp), ("gpu02-join", worker), ("gpu02-token-revoke", cp)):
        execute(node, step(before, name))
    token = step(before, "gpu02-admit")[1]
    assert token not in cp.read(TOKENS)
    execute(worker, ("microk8s leave", ""))  # by hand, on the worker
    refused = execute(worker, step(after, "gpu02-join"), fails=True)
    assert "the control plane refused the join token" in refused.stderr, "the join alone would not do"

    # `pulumi up` with the new timeout: the steps whose text changed run again, in their order
    changed = [(name, node) for name, node in (("gpu02-admit", cp), ("gpu02-join", worker),
                                               ("gpu02-token-revoke", cp))
               if step(before, name) != step(after, name)]
    assert [name for name, _ in changed] == ["gpu02-admit", "gpu02-join", "gpu02-token-revoke"]
    for name, node in changed:
        done = execute(node, step(after, name))
    assert "join token of gpu02 revoked" in done.stderr
    assert worker.p("/var/snap/microk8s/current/var/lock/clustered.lock").exists()
    assert token not in cp.read(TOKENS), "revoked again after the join"
    assert not after.named("gpu02-admit").inputs.get("triggers"), "a replaced admit would remove the node"
