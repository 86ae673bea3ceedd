"""The README's first run (`Pulumi.dev.yaml`, one `host: local` node named after this machine) with the
hostnames admins really have: an FQDN, upper case, and a configured name that is not the host's. The node
name the program passes to every host step is the one the kubelet registers (the lower-cased full host
name), or, for a name of the admin's choosing, the one install.sh gives the kubelet (--hostname-override)."""

from __future__ import annotations

import socket

import pytest
import yaml

from tests.support.program import ROOT, run_program, stack_config

DEV = ROOT / "Pulumi.dev.yaml"
STEPS_WITH_NAME = ("prepare", "install", "ready")


def dev_run(monkeypatch, hostname: str, nodes=None, **extra):
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    overrides = {**({} if nodes is None else {"jhub:nodes": nodes}), **extra}
    return run_program(stack_config(DEV, overrides))


@pytest.mark.parametrize("hostname, name", [
    ("gpu01.lab.example.org", "gpu01.lab.example.org"),   # an FQDN: the kubelet registers all of it
    ("GPU01", "gpu01"),                                   # upper case: the kubelet lower-cases it
    ("GPU01.Lab.Example.ORG", "gpu01.lab.example.org"),
    ("gpu01.lab.example.org.", "gpu01.lab.example.org"),  # a trailing dot is no part of the name
])
def test_the_local_node_is_named_as_the_kubelet_names_it(monkeypatch, hostname, name):
    run = dev_run(monkeypatch, hostname)
    assert run.error is None, run.error
    assert [h.name for h in run.of_type("jhub:hosts:Host")] == [name]
    for step in STEPS_WITH_NAME:
        assert f"JHUB_NODE_NAME={name} " in run.named(f"{name}-{step}").inputs["create"], step
    assert list(run.outputs["nodes"]) == [name]


def test_a_configured_name_that_is_not_the_hostname_reaches_the_host_steps(monkeypatch):
    nodes = yaml.safe_load(DEV.read_text())["config"]["jhub:nodes"]
    nodes = [{**nodes[0], "name": "jhub-cp"}]
    run = dev_run(monkeypatch, "Server-7.Campus.Example.Edu", nodes)
    assert run.error is None, run.error
    assert [h.name for h in run.of_type("jhub:hosts:Host")] == ["jhub-cp"]
    for step in STEPS_WITH_NAME:
        assert "JHUB_NODE_NAME=jhub-cp " in run.named(f"jhub-cp-{step}").inputs["create"], step
    node = run.named("jhub-cp-node").inputs["create"]
    assert "JHUB_NODE_NAME=jhub-cp " in node


def test_a_hostname_that_cannot_be_a_node_name_says_what_to_do(monkeypatch):
    run = dev_run(monkeypatch, "my_laptop")
    assert run.error is not None
    message = str(run.error)
    assert 'this machine\'s hostname "my_laptop" is not a valid node name' in message
    assert "name:" in message  # or name the node in jhub:nodes


def test_growing_the_dev_stack_keeps_the_control_plane_address_when_it_is_given(monkeypatch):
    """README, "Growing the dev stack": a lone local control plane finds its own address; a worker needs
    it configured (`address`). Given the address it found (`pulumi stack output controlPlaneAddress`), the
    stack's address stays, and only the steps that take the address as an input run again."""
    import json

    nodes = yaml.safe_load(DEV.read_text())["config"]["jhub:nodes"]
    alone = dev_run(monkeypatch, "gpu01.lab.example.org")
    assert alone.error is None, alone.error
    found = alone.outputs["controlPlaneAddress"]
    grown_nodes = [{**nodes[0], "address": found},
                   {"name": "gpu02", "host": "10.0.0.2", "role": "worker", "privateKeyFile": "tests/stacks/test_ed25519"}]
    hub = yaml.safe_load(DEV.read_text())["config"]["jhub:hub"]
    hub = {**hub, "storage": {"type": "shared-hostpath", "hostPath": "/srv/jhub-users", "size": "10Gi"}}
    grown = dev_run(monkeypatch, "gpu01.lab.example.org", grown_nodes, **{"jhub:hub": hub})
    assert grown.error is None, grown.error
    assert grown.outputs["controlPlaneAddress"] == found
    assert grown.outputs["hubUrl"] == alone.outputs["hubUrl"]
    before = {r.urn: json.dumps(r.inputs, sort_keys=True) for r in alone.resources()}
    changed = sorted(r.name for r in grown.resources() if r.urn in before
                     and before[r.urn] != json.dumps(r.inputs, sort_keys=True))
    me = "gpu01.lab.example.org"
    # (the hub and the portal, which mounts the users' storage base, change too here, for the storage: one
    # node's disk is no store for several)
    assert [n for n in changed if n not in ("jupyterhub", "portal-deployment")] == [f"{me}-address", f"{me}-kubeconfig", f"{me}-prepare"]
