"""The real Network Operator chart (and the GPU Operator's, for NFD) rendered with the values the program builds:
one NFD in the cluster, every image the release runs is in images.lock, and the NicClusterPolicy is valid
against the CRD the chart installs."""

from __future__ import annotations

import io
import json
import tarfile

import jsonschema
import pytest
import yaml

from components.bundle.locks import load_lock
from components.gpu.values import chart_values as gpu_values
from components.network import offline
from components.network.chart import rdma_plugin_ref
from components.network.policy import nic_cluster_policy, selectors_from_facts
from components.network.values import chart_values
from components.settings import ConfigSource, load_settings
from components.settings.image_refs import full_image
from tests.network.netconfigs import IB_FACTS, config
from tests.support.crd import strict
from tests.support.helm import of_kind, render, shared_chart
from tests.support.program import ROOT

NETWORK_CHART = "network-operator-26.4.1.tgz"
GPU_CHART = "gpu-operator-v26.7.0.tgz"


def settings_for(gpu_operator: bool, **ib):
    values = config(infiniband={"enabled": True, **ib})
    if gpu_operator:
        values["jhub:gpu"] = json.dumps({"operator": True})
    return load_settings(ConfigSource(values), stack="dev", project_dir=ROOT)


def network_render(settings):
    return render(NETWORK_CHART, chart_values(settings), release="network-operator",
                  namespace="nvidia-network-operator")


def nfd_masters(objects):
    return [o for o in of_kind(objects, "Deployment") if o["metadata"]["name"].endswith("node-feature-discovery-master")]


@pytest.mark.parametrize("gpu_operator", [False, True])
def test_exactly_one_nfd_master_across_both_operators(gpu_operator):
    settings = settings_for(gpu_operator)
    network = network_render(settings)
    # The GPU Operator, when asked for, with the values the gpu feature builds (its NFD subchart on).
    gpu = render(GPU_CHART, gpu_values(settings.gpu), release="gpu-operator", namespace="gpu-operator") \
        if gpu_operator else []
    masters = nfd_masters(network) + nfd_masters(gpu)
    assert len(masters) == 1, [m["metadata"]["name"] for m in masters]
    owner = "gpu-operator" if gpu_operator else "network-operator"
    assert masters[0]["metadata"]["name"].startswith(owner)
    # The chart's NodeFeatureRule (pci-15b3.present) is there either way: whichever NFD runs labels IB nodes.
    assert [r["metadata"]["name"] for r in of_kind(network, "NodeFeatureRule")] == ["nvidia-nics-rules"]


def _images(objects) -> set[str]:
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "image" and isinstance(item, str):
                    found.add(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(objects)
    return found


@pytest.mark.parametrize("gpu_operator", [False, True])
def test_images_the_release_runs_are_exactly_the_locked_ones(gpu_operator):
    settings = settings_for(gpu_operator)
    rendered = {full_image(i) for i in _images(network_render(settings))} | {full_image(rdma_plugin_ref())}
    lock = load_lock(ROOT / "offline-images", ROOT / "charts")
    tags = offline.bundle_tags(settings)
    locked = {f.name for f in lock.images if set(f.features) & tags}
    assert rendered == locked
    assert rendered == {ref for _, ref in offline.images(settings)}
    nfd = "nvcr.io/nvidia/mellanox/node-feature-discovery:network-operator-v26.4.1"
    assert (nfd in rendered) is (not gpu_operator)


def test_chart_is_locked_with_its_feature():
    lock = load_lock(ROOT / "offline-images", ROOT / "charts")
    [entry] = [c for c in lock.charts if c.name == "network-operator"]
    assert (entry.version, entry.path, entry.features) == ("26.4.1", NETWORK_CHART, ("network-operator",))


def crd_schema() -> dict:
    with tarfile.open(shared_chart(NETWORK_CHART)) as archive:
        text = archive.extractfile("network-operator/crds/mellanox.com_nicclusterpolicies.yaml").read().decode()
    crd = yaml.safe_load(io.StringIO(text))
    assert crd["spec"]["names"]["kind"] == "NicClusterPolicy" and crd["spec"]["group"] == "mellanox.com"
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("ib", [
    {},
    {"resourceName": "lab.example/hdr", "hcaMax": 8, "selectors": {"vendors": ["15b3"], "deviceIDs": ["101b"]},
     "nodeSelector": {"lab.example/ib": "hdr", "lab.example/rack": "r1"}},
])
def test_nic_cluster_policy_is_valid_against_the_crd_schema(ib):
    settings = settings_for(False, **ib)
    policy = nic_cluster_policy(settings.infiniband, (settings.infiniband.selectors.plugin_selectors()
                                                      if settings.infiniband.selectors else
                                                      selectors_from_facts(IB_FACTS)))
    jsonschema.validate(policy, strict(crd_schema()))


def test_a_broken_policy_is_refused_by_the_crd_schema():
    settings = settings_for(False)
    policy = nic_cluster_policy(settings.infiniband, {"ifNames": ["ib0"]})
    del policy["spec"]["rdmaSharedDevicePlugin"]["image"]  # required by the CRD
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(policy, crd_schema())
