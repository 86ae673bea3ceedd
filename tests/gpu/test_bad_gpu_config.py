"""Bad `jhub:gpu` configs stop the program before any resource is registered, with a line that starts with
the key path and says how to fix it."""

from __future__ import annotations

import json

import pytest

from tests.support.program import ROOT, assert_refused, run_program, stack_config

GPU_STACK = ROOT / "tests" / "stacks" / "Pulumi.gpu.yaml"
H100 = {"jhub.io/pool": "h100"}
L40S = {"jhub.io/pool": "l40s"}


def gpu(**fields):
    return stack_config(GPU_STACK, {"jhub:gpu": {"operator": True, **fields}})


def pool(name="p", selector=None, **fields):
    return {"name": name, "nodeSelector": H100 if selector is None else selector, **fields}


MIG = {"layout": "all-1g.10gb"}

# (id, config, expected key path, expected words)
CASES = [
    ("mig-and-time-slicing", gpu(pools=[pool(mig=MIG, timeSlicing={"replicas": 2})]),
     "jhub:gpu.pools[0]:", "both mig and timeSlicing"),
    ("mig-profile-unknown", gpu(pools=[pool(mig={"layout": "all-1g.9gb"})]),
     "jhub:gpu.pools[0].mig.layout:", 'unknown MIG layout "all-1g.9gb"'),
    ("mig-profile-without-all", gpu(pools=[pool(mig={"layout": "1g.10gb"})]),
     "jhub:gpu.pools[0].mig.layout:", 'did you mean "all-1g.10gb"'),
    ("mig-layout-missing", gpu(pools=[pool(mig={"strategy": "single"})]),
     "jhub:gpu.pools[0].mig.layout:", "is required"),
    ("mig-strategy-unknown", gpu(pools=[pool(mig={**MIG, "strategy": "none"})]),
     "jhub:gpu.pools[0].mig.strategy:", 'must be "single" or "mixed"'),
    ("mig-balanced-with-single", gpu(pools=[pool(mig={"layout": "all-balanced", "strategy": "single"})]),
     "jhub:gpu.pools[0].mig:", 'strategy "single" cannot advertise'),
    ("mig-strategies-differ", gpu(pools=[pool("a", selector=H100, mig={**MIG, "strategy": "mixed"}),
                                         pool("b", selector=L40S, mig={**MIG, "strategy": "single"})]),
     "jhub:gpu.pools[1].mig.strategy:", 'jhub:gpu.pools[0] uses "mixed"'),
    ("replicas-zero", gpu(pools=[pool(timeSlicing={"replicas": 0})]),
     "jhub:gpu.pools[0].timeSlicing.replicas:", "at least 1"),
    ("replicas-negative", gpu(pools=[pool(timeSlicing={"replicas": -3})]),
     "jhub:gpu.pools[0].timeSlicing.replicas:", "at least 1"),
    ("replicas-too-many", gpu(pools=[pool(timeSlicing={"replicas": 500})]),
     "jhub:gpu.pools[0].timeSlicing.replicas:", "at most 64"),
    ("replicas-text", gpu(pools=[pool(timeSlicing={"replicas": "4"})]),
     "jhub:gpu.pools[0].timeSlicing.replicas:", "whole number"),
    ("same-labels-twice", gpu(pools=[pool("a", mig=MIG), pool("b", timeSlicing={"replicas": 2})]),
     "jhub:gpu.pools[1].nodeSelector:", "same labels as jhub:gpu.pools[0]"),
    ("selector-matches-no-node", gpu(pools=[pool(selector={"jhub.io/pool": "a100"}, mig=MIG)]),
     "jhub:gpu.pools[0].nodeSelector:", "matches no node of jhub:nodes (jhub.io/pool=a100)"),
    ("node-in-two-pools", gpu(pools=[pool("a", selector=H100, mig=MIG),
                                      pool("b", selector={"jhub.io/rack": "r1"})]),
     "jhub:gpu.pools[1].nodeSelector:", 'node "gpu02" is already in pool "a"'),
    ("selector-empty", gpu(pools=[pool(selector={})]),
     "jhub:gpu.pools[0].nodeSelector:", "at least one node label"),
    ("selector-on-own-label", gpu(pools=[pool(selector={"nvidia.com/mig.config": "all-1g.10gb"})]),
     "jhub:gpu.pools[0].nodeSelector:", "a label jhub sets"),
    ("pool-name-twice", gpu(pools=[pool("a", selector=H100), pool("a", selector=L40S)]),
     "jhub:gpu.pools[1].name:", 'already the name of jhub:gpu.pools[0]'),
    ("pool-name-default", gpu(pools=[pool("default")]),
     "jhub:gpu.pools[0].name:", "device plugin config of nodes in no pool"),
    ("pool-name-uppercase", gpu(pools=[pool("H100")]),
     "jhub:gpu.pools[0].name:", "lowercase"),
    ("driver-unknown", gpu(driver="nouveau"),
     "jhub:gpu.driver:", 'must be "auto" or "host" or "operator"'),
    ("dcgm-exporter-typo", gpu(dcgmexporter=False),
     "jhub:gpu.dcgmexporter:", "did you mean \"dcgmExporter\""),
    ("pool-key-typo", gpu(pools=[pool(timeslicing={"replicas": 2})]),
     "jhub:gpu.pools[0].timeslicing:", 'did you mean "timeSlicing"'),
    ("pools-without-operator", stack_config(GPU_STACK, {"jhub:gpu": {"operator": False, "pools": [pool()]}}),
     "jhub:gpu.pools:", "set jhub:gpu.operator: true"),
    ("operator-not-bool", stack_config(GPU_STACK, {"jhub:gpu": {"operator": "yes"}}),
     "jhub:gpu.operator:", "true or false"),
    ("microk8s-gpu-addon-too", stack_config(GPU_STACK, {
        "jhub:gpu": {"operator": True},
        "jhub:microk8s": {"channel": "1.32/stable", "addons": ["dns", "nvidia"], "dnsServers": ["10.10.0.254"]}}),
     "jhub:microk8s.addons[1]:", "installs a second GPU Operator"),
    ("smoke-timeout-short", gpu(smokeTestTimeout=5),
     "jhub:gpu.smokeTestTimeout:", "60 to 7200 seconds"),
]


@pytest.mark.parametrize("values,where,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_gpu_config_is_refused_with_its_key_path(values, where, words):
    assert_refused(values, (), where, words)


def test_every_problem_is_reported_at_once():
    run = run_program(gpu(driver="x", pools=[pool(timeSlicing={"replicas": 0})]))
    message = str(run.error)
    assert "jhub:gpu.driver:" in message and "jhub:gpu.pools[0].timeSlicing.replicas:" in message
    assert run.resources() == []


def test_the_example_gpu_stack_is_accepted():
    run = run_program(stack_config(GPU_STACK))
    assert run.error is None, run.error
    assert json.loads(json.dumps(run.outputs.get("gpus"))) == {}
