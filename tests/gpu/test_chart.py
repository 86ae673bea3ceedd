"""The real GPU Operator chart (../shared/charts/gpu-operator-v26.7.0.tgz) rendered with the values the program
generates: what the cluster really gets."""

from __future__ import annotations

import tarfile
from types import SimpleNamespace

import jsonschema
import pytest
import yaml

from components.bundle.locks import load_lock
from components.gpu import chart, offline
from components.gpu.values import chart_values
from components.settings.gpu import GpuSettings
from tests.support.helm import of_kind, render, shared_chart
from tests.support.program import ROOT

ARCHIVE = f"gpu-operator-{chart.CHART_VERSION}.tgz"
POOLS = [
    {"name": "h100-mig", "nodeSelector": {"jhub.io/pool": "h100"}, "mig": {"strategy": "mixed",
                                                                            "layout": "all-1g.10gb"}},
    {"name": "l40s-shared", "nodeSelector": {"jhub.io/pool": "l40s"},
     "timeSlicing": {"replicas": 4, "renameByDefault": True}},
]


def gpu(**fields) -> GpuSettings:
    return GpuSettings.model_validate({"operator": True, **fields})


def rendered(settings: GpuSettings, include_crds: bool = False) -> list[dict]:
    return render(ARCHIVE, chart_values(settings), release=chart.RELEASE_NAME, namespace=chart.NAMESPACE,
                  include_crds=include_crds)


def policy(objects) -> dict:
    [found] = of_kind(objects, "ClusterPolicy")
    return found


def chart_file(name: str) -> str:
    with tarfile.open(shared_chart(ARCHIVE)) as archive:
        return archive.extractfile(f"gpu-operator/{name}").read().decode()


def test_toolkit_is_set_up_for_microk8s_containerd():
    env = {e["name"]: e["value"] for e in policy(rendered(gpu()))["spec"]["toolkit"]["env"]}
    assert env == {
        "CONTAINERD_CONFIG": "/var/snap/microk8s/current/args/containerd-template.toml",
        "CONTAINERD_SOCKET": "/var/snap/microk8s/common/run/containerd.sock",
        "CONTAINERD_RUNTIME_CLASS": "nvidia",
        "CONTAINERD_SET_AS_DEFAULT": "true",
        "RUNTIME_DROP_IN_CONFIG": "/var/snap/microk8s/current/args/conf.d/99-nvidia.toml",
        "RUNTIME_CONFIG_SOURCE": "file",
    }


@pytest.mark.parametrize("driver,enabled,root", [("host", False, "/"), ("operator", True, "/run/nvidia/driver"),
                                                 ("auto", True, "/run/nvidia/driver")])
def test_driver_mode(driver, enabled, root):
    spec = policy(rendered(gpu(driver=driver)))["spec"]
    assert spec["driver"]["enabled"] is enabled
    assert spec["hostPaths"]["driverInstallDir"] == root


@pytest.mark.parametrize("on", [True, False])
def test_dcgm_exporter_on_or_off(on):
    spec = policy(rendered(gpu(dcgmExporter=on)))["spec"]
    assert spec["dcgmExporter"]["enabled"] is on
    assert spec["dcgm"]["enabled"] is False
    assert spec["dcgmExporter"]["serviceMonitor"]["enabled"] is False


def test_time_slicing_and_mig_configs_per_pool():
    objects = rendered(gpu(pools=POOLS))
    spec = policy(objects)["spec"]
    assert spec["devicePlugin"]["config"] == {"name": "time-slicing-config", "default": "default"}
    [config_map] = [o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"] == "time-slicing-config"]
    assert config_map["metadata"]["namespace"] == "gpu-operator"
    data = {k: yaml.safe_load(v) for k, v in config_map["data"].items()}
    assert data == {
        # One MIG strategy in the cluster (the operator passes it to the plugin too); GPUs without MIG are
        # advertised whole under any strategy.
        "default": {"version": "v1", "flags": {"migStrategy": "mixed"}},
        "h100-mig": {"version": "v1", "flags": {"migStrategy": "mixed"}},
        "l40s-shared": {"version": "v1", "flags": {"migStrategy": "mixed"}, "sharing": {"timeSlicing": {
            "renameByDefault": True, "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}},
    }
    assert spec["mig"]["strategy"] == "mixed"
    assert spec["migManager"]["enabled"] is True
    # Nodes in no MIG pool run with MIG off; the pool's nodes get their layout by label (see test_program).
    assert spec["migManager"]["config"] == {"default": "all-disabled"}


def test_time_slicing_alone_keeps_mig_off_in_the_plugin_config():
    objects = rendered(gpu(pools=POOLS[1:]))
    [config_map] = [o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"] == "time-slicing-config"]
    assert {k: yaml.safe_load(v)["flags"] for k, v in config_map["data"].items()} == {
        "default": {"migStrategy": "none"}, "l40s-shared": {"migStrategy": "none"}}
    spec = policy(objects)["spec"]
    assert spec["migManager"]["enabled"] is False and spec["mig"]["strategy"] == "single"


def test_without_pools_no_plugin_config_and_no_mig_manager():
    objects = rendered(gpu())
    spec = policy(objects)["spec"]
    assert "config" not in spec["devicePlugin"]
    assert spec["migManager"]["enabled"] is False
    assert not [o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"] == "time-slicing-config"]


def test_exactly_one_node_feature_discovery_when_gpu_runs_alone():
    objects = rendered(gpu())
    nfd = [o for o in objects if o["kind"] in ("Deployment", "DaemonSet")
           and "node-feature-discovery" in o["metadata"]["name"]]
    names = sorted((o["kind"], o["metadata"]["name"]) for o in nfd)
    assert names == [("DaemonSet", "gpu-operator-node-feature-discovery-worker"),
                     ("Deployment", "gpu-operator-node-feature-discovery-gc"),
                     ("Deployment", "gpu-operator-node-feature-discovery-master")]
    # The chart's only DaemonSet is NFD's worker (it must look at every node); the GPU daemons are the
    # operator's, which select the nvidia.com/gpu.deploy.* labels it sets on NVIDIA nodes only.
    assert [o["metadata"]["name"] for o in of_kind(objects, "DaemonSet")] == \
        ["gpu-operator-node-feature-discovery-worker"]
    # The worker labels nodes by PCI vendor of display/3D controllers: 10de marks the NVIDIA GPU nodes that
    # alone get the operator's daemons (their selectors are the nvidia.com/gpu.deploy.* labels it sets there).
    [worker_conf] = [o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("worker-conf")]
    pci = yaml.safe_load(worker_conf["data"]["nfd-worker.conf"])["sources"]["pci"]
    assert {"0300", "0302"} <= set(pci["deviceClassWhitelist"]) and pci["deviceLabelFields"] == ["vendor"]


def _workload_images(objects) -> set[str]:
    found = set()
    for o in objects:
        spec = (o.get("spec") or {}).get("template", {}).get("spec") or {}
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            found.add(c["image"])
    return found


def _policy_images(spec: dict, os_tags) -> set[str]:
    """Images the operator runs for a ClusterPolicy: every enabled operand's repository/image:version."""
    found = set()
    for name, part in spec.items():
        if not isinstance(part, dict) or not part.get("enabled") or not part.get("image"):
            continue
        if name == "driver":
            found |= {f"{part['repository']}/{part['image']}:{part['version']}-{os}" for os in os_tags}
            manager = part["manager"]
            found.add(f"{manager['repository']}/{manager['image']}:{manager['version']}")
        else:
            found.add(f"{part['repository']}/{part['image']}:{part['version']}")
    validator = spec["validator"]
    found.add(f"{validator['repository']}/{validator['image']}:{validator['version']}")
    return found


@pytest.mark.parametrize("fields", [
    {},
    {"driver": "host", "dcgmExporter": False},
    {"driver": "operator", "pools": POOLS},
], ids=["defaults", "host-driver-no-exporter", "operator-driver-pools"])
def test_rendered_images_equal_the_lock_entries_of_the_feature(fields):
    settings = gpu(**fields)
    objects = rendered(settings)
    images = _workload_images(objects) | _policy_images(policy(objects)["spec"], chart.DRIVER_OS)
    images.add(chart.SMOKE_IMAGE)
    lock = load_lock(ROOT / "offline-images", ROOT / "charts")
    tags = offline.bundle_tags(SimpleNamespace(gpu=settings))  # it reads jhub:gpu only
    locked = {f.name for f in lock.images if set(f.features) & tags}
    assert images == locked
    assert {ref for _, ref in offline.release_images(settings)} == locked
    assert all(lock.image_for(ref) for ref in images)


def test_every_operand_image_is_set_explicitly_and_matches_the_chart_defaults():
    defaults = yaml.safe_load(chart_file("values.yaml"))
    values = chart_values(gpu())
    for key, image in [("operator", chart.OPERATOR), ("validator", chart.VALIDATOR), ("toolkit", chart.TOOLKIT),
                       ("devicePlugin", chart.DEVICE_PLUGIN), ("gfd", chart.GFD),
                       ("dcgmExporter", chart.DCGM_EXPORTER), ("migManager", chart.MIG_MANAGER),
                       ("driver", chart.DRIVER)]:
        repository, name, version = image
        assert (values[key]["repository"], values[key]["image"], values[key]["version"]) == image
        upstream = defaults[key]
        assert (upstream["repository"], upstream["image"]) == (repository, name)
        assert upstream.get("version", chart.CHART_VERSION) == version, key
    manager = defaults["driver"]["manager"]
    assert (manager["repository"], manager["image"], manager["version"]) == chart.DRIVER_MANAGER
    nfd = yaml.safe_load(chart_file("charts/node-feature-discovery/values.yaml"))
    nfd_chart = yaml.safe_load(chart_file("charts/node-feature-discovery/Chart.yaml"))
    assert f"{nfd['image']['repository']}:{nfd['image'].get('tag') or nfd_chart['appVersion']}" == \
        chart.ref(chart.NFD)
    assert yaml.safe_load(chart_file("Chart.yaml"))["version"] == chart.CHART_VERSION


def test_cluster_policy_is_valid_for_its_crd():
    objects = rendered(gpu(pools=POOLS, driver="operator"), include_crds=True)
    [crd] = [o for o in of_kind(objects, "CustomResourceDefinition")
             if o["metadata"]["name"] == "clusterpolicies.nvidia.com"]
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    jsonschema.validate(policy(objects), version["schema"]["openAPIV3Schema"])


def test_uninstall_removes_the_cluster_policy_while_the_operator_runs():
    """The chart's pre-delete hook deletes the CRDs (and so the ClusterPolicy, whose operands are garbage
    collected) before helm deletes the operator; helm itself keeps its hands off the CR."""
    objects = rendered(gpu())
    assert policy(objects)["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    hooks = {o["metadata"]["name"]: o for o in of_kind(objects, "Job")}
    cleanup = hooks["gpu-operator-cleanup-crd"]
    assert cleanup["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    args = cleanup["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--filepath=/opt/gpu-operator/nvidia.com_clusterpolicies.yaml" in args


def test_values_are_byte_identical_for_the_same_settings():
    import json

    first = json.dumps(chart_values(gpu(pools=POOLS)))
    assert first == json.dumps(chart_values(gpu(pools=list(POOLS))))
    assert json.dumps(chart_values(gpu(pools=POOLS)), sort_keys=True) == first
