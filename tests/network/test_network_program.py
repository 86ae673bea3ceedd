"""The Network Operator in the whole program under mocks: the release, the NicClusterPolicy after it, selectors
from config or from the nodes' facts, and nothing at all when jhub:infiniband is off."""

from __future__ import annotations

import json

import pytest

from components.settings import ConfigError
from tests.network.netconfigs import IB_FACTS, config
from tests.support.program import assert_refused, run_program

POLICY = "kubernetes:mellanox.com/v1alpha1:NicClusterPolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"


def plugin_config(run) -> dict:
    policy = run.named("nic-cluster-policy")
    return json.loads(policy.inputs["spec"]["rdmaSharedDevicePlugin"]["config"])["configList"][0]


def test_policy_selects_the_infiniband_ports_the_facts_show():
    run = run_program(config(infiniband={"enabled": True}), facts=IB_FACTS)
    assert run.error is None, run.error
    entry = plugin_config(run)
    # ib0 and ib1 (InfiniBand link layer) on any node; the RoCE port of gpu02 is not an InfiniBand device
    assert entry == {"rdmaHcaMax": 63, "resourceName": "rdma_shared_device_a", "resourcePrefix": "rdma",
                     "selectors": {"ifNames": ["ib0", "ib1"]}}


def test_configured_selectors_and_resource_win_over_the_facts():
    ib = {"enabled": True, "resourceName": "lab.example/hdr", "hcaMax": 8,
          "selectors": {"vendors": ["15b3"], "deviceIDs": ["101b"], "linkTypes": ["infiniband"]},
          "nodeSelector": {"lab.example/ib": "hdr"}}
    run = run_program(config(infiniband=ib), facts=IB_FACTS)
    assert run.error is None, run.error
    assert plugin_config(run) == {"rdmaHcaMax": 8, "resourceName": "hdr", "resourcePrefix": "lab.example",
                                  "selectors": {"deviceIDs": ["101b"], "linkTypes": ["infiniband"],
                                                "vendors": ["15b3"]}}
    affinity = run.named("nic-cluster-policy").inputs["spec"]["nodeAffinity"]
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "lab.example/ib", "operator": "In", "values": ["hdr"]}]}]


def test_policy_waits_for_the_release_that_installs_its_crd():
    run = run_program(config(infiniband={"enabled": True}), facts=IB_FACTS)
    [release] = [r for r in run.of_type(RELEASE) if r.name == "network-operator"]
    assert release.inputs["skipCrds"] is False
    policy = run.named("nic-cluster-policy")
    assert release.urn in policy.dependencies
    assert release.inputs["namespace"] == "nvidia-network-operator"
    namespace = run.named("network-operator-namespace")
    assert namespace.urn in release.dependencies


def test_no_selector_and_no_infiniband_in_the_facts_is_a_key_path_error_and_no_policy():
    run = run_program(config(infiniband={"enabled": True}),
                      facts={"gpu01": {"infiniband": [IB_FACTS["gpu02"]["infiniband"][1]]}})  # RoCE only
    assert isinstance(run.error, ConfigError), run.error
    line = str(run.error).splitlines()[0]
    assert line.startswith("jhub:infiniband.selectors: ")
    assert "no InfiniBand device in the facts of any node (nodes: gpu01, gpu02)" in line
    assert run.of_type(POLICY) == []


def test_same_config_same_inputs():
    first = run_program(config(infiniband={"enabled": True}), facts=IB_FACTS)
    second = run_program(config(infiniband={"enabled": True}), facts=IB_FACTS)
    assert _signature(first) == _signature(second)


def _signature(run):
    """Every registration with its inputs, in a stable order (steps of different nodes register concurrently)."""
    return sorted((r.type, r.name, json.dumps(r.inputs, sort_keys=True, default=str)) for r in run.resources())


def test_turned_off_registers_exactly_what_a_config_without_the_key_does():
    """Off (with other keys set) == no jhub:infiniband / jhub:mpi at all: nothing of either feature, nothing else changed."""
    base = run_program(config(), facts=IB_FACTS)
    off = run_program(config(infiniband={"enabled": False, "hcaMax": 4, "resourceName": "rdma/x"},
                             mpi={"enabled": False, "namespacePrefix": "lab-"}), facts=IB_FACTS)
    assert base.error is None and off.error is None
    assert _signature(off) == _signature(base)
    assert not [r for r in off.resources() if r.type.startswith(("jhub:network", "jhub:mpi"))
                or "mellanox" in r.type or r.name.startswith(("network-operator", "mpi-"))]


def test_turning_on_only_adds_resources():
    base = {(r.type, r.name) for r in run_program(config(), facts=IB_FACTS).resources()}
    on = {(r.type, r.name) for r in run_program(config(infiniband={"enabled": True}), facts=IB_FACTS).resources()}
    assert base <= on
    assert on - base == {("jhub:network:NetworkOperator", "network-operator"),
                         ("kubernetes:core/v1:Namespace", "network-operator-namespace"),
                         (RELEASE, "network-operator"), (POLICY, "nic-cluster-policy")}


CASES = [
    ("bad-resource-name", {"enabled": True, "resourceName": "rdma_shared_device_a"},
     "jhub:infiniband.resourceName:", '"<prefix>/<name>"'),
    ("reserved-prefix", {"enabled": True, "resourceName": "kubernetes.io/rdma"},
     "jhub:infiniband.resourceName:", "Kubernetes reserves"),
    ("hca-max-zero", {"enabled": True, "hcaMax": 0}, "jhub:infiniband.hcaMax:", "at least 1"),
    ("empty-selectors", {"enabled": True, "selectors": {}}, "jhub:infiniband.selectors:",
     "at least one of ifNames"),
    ("bad-vendor", {"enabled": True, "selectors": {"vendors": ["Mellanox"]}},
     "jhub:infiniband.selectors.vendors:", "4 lowercase hex digits"),
    ("bad-link-type", {"enabled": True, "selectors": {"linkTypes": ["ib"]}},
     "jhub:infiniband.selectors.linkTypes:", '"infiniband" or "ether"'),
    ("bad-interface", {"enabled": True, "selectors": {"ifNames": ["ib 0"]}},
     "jhub:infiniband.selectors.ifNames:", "network interface name"),
    ("empty-node-selector", {"enabled": True, "nodeSelector": {}}, "jhub:infiniband.nodeSelector:",
     "at least one node label"),
    ("unknown-key", {"enabled": True, "hcaMAX": 3}, "jhub:infiniband.hcaMAX:", 'did you mean "hcaMax"'),
    ("gpu-resource", {"enabled": True, "resourceName": "nvidia.com/gpu"}, "jhub:infiniband.resourceName:",
     "is the GPU resource"),
    ("hub-namespace", {"enabled": True, "namespace": "jhub"}, "jhub:infiniband.namespace:",
     "must differ from jhub:hub.namespace"),
]


@pytest.mark.parametrize("ib,where,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_infiniband_config_names_the_key_and_registers_nothing(ib, where, words):
    assert_refused(config(infiniband=ib), (), where, words)


def test_with_the_gpu_operator_its_nfd_comes_first_and_this_chart_runs_none():
    run = run_program(config(infiniband={"enabled": True}, gpu={"operator": True}), facts=IB_FACTS)
    assert run.error is None, run.error
    releases = {r.name: r for r in run.of_type(RELEASE)}
    gpu, network = releases["gpu-operator"], releases["network-operator"]
    assert gpu.urn in network.dependencies  # the NodeFeatureRule CRD comes with the GPU Operator's NFD
    assert network.inputs["values"]["nfd"]["enabled"] is False
    assert gpu.inputs["values"]["nfd"]["enabled"] is True


def _hub_profiles(run) -> dict:
    [hub] = [r for r in run.of_type(RELEASE) if r.name == "jupyterhub"]
    return hub.inputs["values"]["custom"]["jhub"]["profiles"]


def test_the_spawn_form_offers_the_rdma_resource_the_plugin_advertises_and_none_without_it():
    ib = {"enabled": True, "resourceName": "lab.example/hdr", "selectors": {"ifNames": ["ib0"]}}
    run = run_program(config(infiniband=ib), facts=IB_FACTS)
    assert run.error is None, run.error
    assert _hub_profiles(run)["rdmaResource"] == "lab.example/hdr"
    off = run_program(config())
    assert off.error is None, off.error
    assert _hub_profiles(off)["rdmaResource"] == "", "no Network Operator: InfiniBand is never offered"
