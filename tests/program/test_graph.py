"""The whole program under Pulumi mocks, from real stack files: the resource graph a `pulumi up` builds."""

from __future__ import annotations

import copy
import json
import re
import socket

import pytest
import yaml

from tests.support.program import ROOT, plain_strings, run_program, stack_config

DEV = ROOT / "Pulumi.dev.yaml"
THREE = ROOT / "tests" / "stacks" / "Pulumi.three.yaml"
KEY_TEXT = (ROOT / "tests" / "stacks" / "test_ed25519").read_text()


def three_nodes(extra=(), order=None, **overrides):
    data = yaml.safe_load(THREE.read_text())["config"]
    nodes = data["jhub:nodes"] + list(extra)
    if order is not None:
        nodes = [nodes[i] for i in order]
    return stack_config(THREE, {"jhub:nodes": nodes, **overrides})


def ok(run):
    assert run.error is None, f"program failed: {run.error}"
    return run


def inputs_by_urn(run) -> dict[str, str]:
    return {r.urn: json.dumps(r.inputs, sort_keys=True) for r in run.resources()}


def test_dev_stack_is_one_local_control_plane():
    run = ok(run_program(stack_config(DEV)))
    hosts = run.of_type("jhub:hosts:Host")
    me = socket.gethostname().rstrip(".").lower()  # a local node is named after this machine
    assert [h.name for h in hosts] == [me]
    assert run.of_type("command:remote:Command") == [], "host: local must not use SSH"
    names = {r.name for r in run.of_type("command:local:Command")}
    steps = ("teardown", "prepare", "install", "address", "ready", "addons", "kubeconfig", "node")
    assert {f"{me}-{step}" for step in steps} <= names
    assert not any(n.endswith(("-join", "-upload")) for n in names)
    # the local node runs the copy in /var/lib/jhub/scripts/ like any node: no stored command, a delete
    # included, names this checkout, so moving the repository never breaks `pulumi destroy`
    assert run.named(f"{me}-scripts").urn in run.named(f"{me}-prepare").dependencies
    for reg in run.of_type("command:local:Command"):
        for key in ("create", "update", "delete"):
            assert str(ROOT) not in str(reg.inputs.get(key) or ""), (reg.name, key)
    assert "/var/lib/jhub/scripts/" in run.named(f"{me}-teardown").inputs["delete"]
    # the node's own address, never loopback, is what people get
    assert run.outputs["controlPlaneAddress"] == _mock_address(me)
    assert me in run.outputs["nodes"]
    assert "JHUB_CONTROL_PLANE_ADDRESS=''" in run.named(f"{me}-address").inputs["create"]
    assert "127.0.0.1" not in run.outputs.get("hubUrl", "")


def _mock_address(name: str) -> str:
    from tests.support.program import mock_address

    return mock_address(name)


def test_steps_run_in_order_and_readiness_waits_for_the_images():
    run = ok(run_program(three_nodes()))
    deps = {r.name: r.dependencies for r in run.resources()}
    urns = {r.name: r.urn for r in run.resources()}
    chain = ["teardown", "scripts", "prepare", "install", "address", "ready", "addons"]
    for before, after in zip(chain, chain[1:]):
        assert urns[f"gpu01-{before}"] in deps[f"gpu01-{after}"], f"{after} must wait for {before}"
    # a worker joins first, then is awaited Ready and reports its facts: never a one-node cluster of its own
    chain = ["teardown", "scripts", "prepare", "install", "address", "join", "ready", "node"]
    for before, after in zip(chain, chain[1:]):
        assert urns[f"gpu02-{before}"] in deps[f"gpu02-{after}"], f"{after} must wait for {before}"


def _ancestors(run, name: str) -> set[str]:
    by_urn = run.by_urn()
    seen, todo = set(), [run.named(name).urn]
    while todo:
        for dep in by_urn[todo.pop()].dependencies:
            if dep not in seen and dep in by_urn:
                seen.add(dep)
                todo.append(dep)
    return {by_urn[u].name for u in seen}


def test_a_workers_readiness_and_facts_come_after_its_join():
    run = ok(run_program(three_nodes()))
    for worker in ("gpu02", "gpu03"):
        before_join = _ancestors(run, f"{worker}-join")
        assert f"{worker}-ready" not in before_join, "the worker must not be awaited Ready before it joins"
        assert f"{worker}-admit" in before_join and f"{worker}-address" in before_join
        assert f"{worker}-join" in _ancestors(run, f"{worker}-ready")
        assert f"{worker}-ready" in _ancestors(run, f"{worker}-node")
        # the facts (the ready step's stdout) are those of the joined node
        assert "facts.sh" in run.named(f"{worker}-ready").inputs["create"]
    # the control plane is Ready before its addons and before any admit
    assert "gpu01-ready" in _ancestors(run, "gpu01-addons")
    assert "gpu01-ready" in _ancestors(run, "gpu02-admit")


def test_three_nodes_graph():
    run = ok(run_program(three_nodes()))
    assert sorted(h.name for h in run.of_type("jhub:hosts:Host")) == ["gpu01", "gpu02", "gpu03"]
    joins = sorted(r.name for r in run.resources() if r.name.endswith("-join"))
    assert joins == ["gpu02-join", "gpu03-join"], "one join per worker, none for the control plane"
    for worker in ("gpu02", "gpu03"):
        for step in ("admit", "leave", "node"):
            run.named(f"{worker}-{step}")
    urns = {r.name: r.urn for r in run.resources()}
    provider = run.of_type("pulumi:providers:kubernetes")
    assert len(provider) == 1
    assert urns["gpu01-addons"] in provider[0].dependencies
    assert urns["gpu01-kubeconfig"] in provider[0].dependencies
    assert provider[0].inputs.get("clusterIdentifier") == "jhub-dev-gpu01"
    # the join waits for the control plane to admit the worker and for the worker's own install
    join = run.named("gpu02-join")
    assert urns["gpu02-admit"] in join.dependencies
    assert urns["gpu02-address"] in join.dependencies
    assert join.delete_before_replace and run.named("gpu02-leave").delete_before_replace
    assert "JHUB_CONTROL_PLANE_ADDRESS=10.10.0.1" in join.inputs["create"]
    # the node step labels and uncordons at the join, re-labels on updates (never uncordons again),
    # and drains on removal
    node = run.named("gpu02-node").inputs
    assert "labels.sh" in node["create"] and "uncordon" in node["create"]
    assert "labels.sh" in node["update"] and "uncordon" not in node["update"]
    assert "drain.sh" in node["delete"] and node["delete"].endswith("drain.sh drain")
    # removal order: node (drain) depends on leave, leave on join, join on admit
    assert urns["gpu02-leave"] in run.named("gpu02-node").dependencies
    assert urns["gpu02-join"] in run.named("gpu02-leave").dependencies


def test_per_node_ssh_overrides_and_host_key():
    run = ok(run_program(three_nodes()))
    conn = run.named("gpu03-install").inputs["connection"]
    conn = conn.get("value", conn)  # the connection holds a secret, so it may arrive wrapped
    assert conn["user"] == "admin" and conn["host"] == "10.10.0.3"
    assert conn["hostKey"].startswith("ssh-ed25519 ")
    assert "JHUB_INTERFACE=ib0" in run.named("gpu03-address").inputs["create"]


def _node_of(run, reg) -> str:
    """The node a resource belongs to: its own name prefix (every per-node resource starts with it)."""
    return reg.name.split("-")[0]


def test_adding_a_node_touches_nothing_else():
    new = {"name": "gpu04", "host": "10.10.0.4", "role": "worker"}
    before = ok(run_program(three_nodes()))
    after = ok(run_program(three_nodes(extra=[new])))
    old, new_inputs = inputs_by_urn(before), inputs_by_urn(after)
    changed = [urn for urn in old if urn in new_inputs and old[urn] != new_inputs[urn]]
    assert changed == [], f"adding gpu04 changed existing resources: {changed}"
    assert set(old) <= set(new_inputs)
    added = [r for r in after.resources() if r.urn not in old]
    assert added, "the new node must add resources"
    assert all(r.name.startswith("gpu04-") or r.name == "gpu04" for r in added), [r.name for r in added]


def test_removing_a_node_touches_nothing_else():
    before = ok(run_program(three_nodes()))
    data = yaml.safe_load(THREE.read_text())["config"]["jhub:nodes"][:2]
    after = ok(run_program(stack_config(THREE, {"jhub:nodes": data})))
    old, remaining = inputs_by_urn(before), inputs_by_urn(after)
    assert set(remaining) <= set(old)
    assert all(old[u] == remaining[u] for u in remaining)
    gone = {before.by_urn()[u].name for u in set(old) - set(remaining)}
    assert gone and all(n.startswith("gpu03") for n in gone), gone


def test_reordering_nodes_changes_nothing():
    first = inputs_by_urn(ok(run_program(three_nodes())))
    second = inputs_by_urn(ok(run_program(three_nodes(order=[2, 0, 1]))))
    assert first == second


def test_same_config_gives_byte_identical_inputs():
    runs = [ok(run_program(three_nodes(), secret_keys=("jhub:ssh",))) for _ in range(2)]
    dumps = [sorted((r.urn, json.dumps(r.inputs, sort_keys=True)) for r in run.resources()) for run in runs]
    assert dumps[0] == dumps[1]


def _secret_values():
    return [KEY_TEXT.strip(), "0123456789abcdef0123456789abcdef", "KUBECONFIG-SECRET", "hunter2-pass"]


@pytest.mark.parametrize("with_password", [False, True])
def test_no_secret_in_plain_inputs(with_password):
    ssh = yaml.safe_load(THREE.read_text())["config"]["jhub:ssh"]
    ssh = copy.deepcopy(ssh)
    if with_password:
        ssh.pop("privateKeyFile")
        ssh["password"] = "hunter2-pass"
    else:
        ssh.pop("privateKeyFile")
        ssh["privateKey"] = KEY_TEXT
    run = ok(run_program(three_nodes(**{"jhub:ssh": ssh}), secret_keys=("jhub:ssh",)))
    leaks = []
    for reg in run.resources():
        for path, text in plain_strings(reg.inputs):
            for secret in _secret_values():
                for line in secret.splitlines():
                    if len(line) > 8 and line in text:
                        leaks.append((reg.name, path))
    assert leaks == [], f"secrets in plain inputs: {leaks}"
    assert "kubeconfig" in run.secret_outputs
    token = run.named("cluster-join-token")
    assert "stdout" in token.additional_secret_outputs
    assert "stdout" in run.named("gpu01-kubeconfig").additional_secret_outputs
    # the key reaches the best-effort leave step through stdin, never through its command text
    leave = run.named("gpu02-leave")
    assert "stdin" in leave.inputs and "cat > \"$d/secret\"" in leave.inputs["delete"]


def test_commands_never_leak_previous_output_into_the_environment():
    run = ok(run_program(three_nodes()))
    commands = [r for r in run.resources() if r.type.startswith("command:") and r.type.endswith(":Command")]
    assert commands and all(r.inputs.get("addPreviousOutputInEnv") is False for r in commands)


def test_teardown_is_created_first_so_it_is_deleted_last():
    run = ok(run_program(three_nodes()))
    teardown = run.named("gpu02-teardown")
    assert teardown.urn in run.named("gpu02-scripts").dependencies
    assert "uninstall.sh" in teardown.inputs["delete"] and "JHUB_KEEP_MICROK8S=1" in teardown.inputs["delete"]


def test_removing_microk8s_is_opt_in():
    run = ok(run_program(three_nodes(**{"jhub:microk8s": {"removeOnDestroy": True,
                                                          "dnsServers": ["10.10.0.254"]}})))
    for node in ("gpu01", "gpu02", "gpu03"):
        delete = run.named(f"{node}-teardown").inputs["delete"]
        assert "uninstall.sh" in delete and "JHUB_KEEP_MICROK8S=0" in delete


def test_a_reset_reruns_every_later_step_of_that_node_only():
    data = yaml.safe_load(THREE.read_text())["config"]["jhub:nodes"]
    data[1] = {**data[1], "reset": True}
    before = inputs_by_urn(ok(run_program(three_nodes())))
    run = ok(run_program(stack_config(THREE, {"jhub:nodes": data})))
    after = inputs_by_urn(run)
    changed = {run.by_urn()[u].name for u in after if before.get(u) != after[u]}
    assert {"gpu02-install", "gpu02-address", "gpu02-ready", "gpu02-join"} <= changed
    assert all(name.startswith("gpu02-") for name in changed), changed
    assert "JHUB_RESET_ID=1" in run.named("gpu02-join").inputs["create"]


def test_the_inventory_and_the_addresses_are_not_secret():
    """pulumi-command makes every output of a Command secret when its connection holds a secret (the
    mocks do the same): facts and addresses are not secret, so `pulumi stack output nodes` shows them."""
    ssh = copy.deepcopy(yaml.safe_load(THREE.read_text())["config"]["jhub:ssh"])
    ssh.pop("privateKeyFile")
    ssh["privateKey"] = KEY_TEXT
    run = ok(run_program(three_nodes(**{"jhub:ssh": ssh}), secret_keys=("jhub:ssh",)))
    assert "kubeconfig" in run.secret_outputs
    assert "nodes" not in run.secret_outputs and "controlPlaneAddress" not in run.secret_outputs
    assert run.outputs["nodes"]["gpu02"]["facts"]["cpus"] == 8
    assert run.outputs["nodes"]["gpu02"]["address"] == _mock_address("gpu02")


def test_a_reset_reruns_the_workers_admit_so_its_join_gets_a_fresh_token():
    """pulumi-command re-runs a Command's create when its command text changes (no replacement, so the
    admit's delete, `microk8s remove-node`, never runs for it): the worker's reset id is in its admit's
    text, so the admit runs with every reset's join and renews a token that expired meanwhile."""
    data = yaml.safe_load(THREE.read_text())["config"]["jhub:nodes"]
    before = ok(run_program(three_nodes()))
    data[1] = {**data[1], "reset": "2026-12-06"}
    after = ok(run_program(stack_config(THREE, {"jhub:nodes": data})))
    old, new = before.named("gpu02-admit").inputs, after.named("gpu02-admit").inputs
    assert old["create"] != new["create"] and "JHUB_JOIN_ID=2026-12-06" in new["create"]
    assert "JHUB_RESET_ID=2026-12-06" in after.named("gpu02-join").inputs["create"]
    assert not new.get("triggers"), "a trigger would replace the admit: its delete removes the node"
    assert before.named("gpu03-admit").inputs == after.named("gpu03-admit").inputs
    assert before.named("gpu01-ready").inputs == after.named("gpu01-ready").inputs


def test_the_join_verifies_the_control_plane_by_its_fingerprint():
    run = ok(run_program(three_nodes()))
    fingerprint = run.named("gpu01-fingerprint")
    assert "fingerprint.sh" in fingerprint.inputs["create"]
    assert run.named("gpu01-addons").urn in fingerprint.dependencies
    for worker in ("gpu02", "gpu03"):
        join = run.named(f"{worker}-join")
        assert fingerprint.urn in join.dependencies
        assert "JHUB_CONTROL_PLANE_FINGERPRINT=0a1b2c3d4e5f " in join.inputs["create"]
        assert not join.inputs.get("triggers"), "the join's inputs are all in its command text"



def test_a_changed_host_script_reruns_only_the_steps_that_run_it(tmp_path, monkeypatch):
    import shutil

    from components.cluster import hostscripts

    before = inputs_by_urn(ok(run_program(three_nodes())))
    copy = tmp_path / "hosts"
    shutil.copytree(ROOT / "hosts", copy)
    with open(copy / "drain.sh", "a") as f:
        f.write("# a fix in drain.sh\n")
    monkeypatch.setattr(hostscripts, "HOSTS_DIR", copy)
    hostscripts.clear_caches()
    try:
        run = ok(run_program(three_nodes()))
    finally:
        monkeypatch.undo()
        hostscripts.clear_caches()
    after = inputs_by_urn(run)
    changed = sorted(run.by_urn()[u].name for u in after if before.get(u) != after[u])
    # drain.sh runs in the workers' node steps; the scripts steps ship the new copy
    assert changed == ["gpu01-scripts", "gpu02-node", "gpu02-scripts", "gpu03-node", "gpu03-scripts"]


def test_each_worker_joins_with_its_own_token_revoked_after_its_join():
    """A failed join is retried by a later `up` without its admit: the admit's token does not expire in
    days (a backstop of years), and a step on the control plane revokes it once the join succeeded, with the
    admit's own inputs so it runs again whenever the admit registers the token again."""
    from components.cluster.component import TOKEN_TTL_SECONDS, worker_token

    run = ok(run_program(three_nodes()))
    urns = {r.name: r.urn for r in run.resources()}
    tokens = set()
    for worker in ("gpu02", "gpu03"):
        admit, join, revoke = (run.named(f"{worker}-{s}") for s in ("admit", "join", "token-revoke"))
        assert admit.inputs["stdin"] == join.inputs["stdin"] == revoke.inputs["stdin"]
        tokens.add(json.dumps(admit.inputs["stdin"], sort_keys=True))
        assert urns[f"{worker}-join"] in revoke.dependencies
        assert urns[f"{worker}-token-revoke"] in run.named(f"{worker}-ready").dependencies
        assert f"JHUB_TOKEN_TTL={TOKEN_TTL_SECONDS} " in revoke.inputs["create"]
        assert revoke.inputs["create"].replace(" revoke", " add") == admit.inputs["create"]
        assert not revoke.inputs.get("delete")
    assert len(tokens) == 2, "one token per worker"
    assert TOKEN_TTL_SECONDS >= 365 * 24 * 3600
    assert worker_token("a" * 32, "gpu02") == worker_token("a" * 32 + "\n", "gpu02") != worker_token("a" * 32, "gpu03")
    assert re.fullmatch(r"[0-9a-f]{32}", worker_token("a" * 32, "gpu02"))
