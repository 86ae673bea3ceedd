"""The whole program under Pulumi mocks with the GPU Operator on (tests/stacks/Pulumi.gpu.yaml): what it
registers, in which order, with which inputs; and that with the feature off nothing differs from before."""

from __future__ import annotations

import json

import pytest
import yaml

from components.bundle.preflight import PreflightError
from components.gpu.values import chart_values
from components.settings.gpu import GpuSettings
from tests.program.test_offline import make_bundle
from tests.support import program
from tests.support.program import ROOT, run_program, stack_config

GPU_STACK = ROOT / "tests" / "stacks" / "Pulumi.gpu.yaml"
THREE = ROOT / "tests" / "stacks" / "Pulumi.three.yaml"
GPU_TYPES = ("jhub:gpu:", "kubernetes:core/v1:NodePatch")

H100_FACTS = {"hostname": "gpu02", "cpus": 64, "os": {"id": "ubuntu", "version": "24.04"}, "gpus": [
    {"index": i, "model": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "driver": "595.91.07",
     "kernelModule": "nvidia", "pciAddress": f"0000:{i + 1:02x}:00.0"} for i in range(2)]}
# GPUs, but no NVIDIA driver loaded (nouveau): the operator brings its driver container there.
L40S_FACTS = {"hostname": "gpu03", "cpus": 32, "os": {"id": "ubuntu", "version": "22.04"}, "gpus": [
    {"index": 0, "model": "NVIDIA L40S", "memoryMiB": None, "driver": None, "kernelModule": "nouveau",
     "pciAddress": "0000:01:00.0"}]}
SMOKE = {"gpu02": {"model": "NVIDIA H100 80GB HBM3", "count": 14, "resource": "nvidia.com/mig-1g.10gb",
                   "driver": "595.91.07", "cuda": "13.1"}}


@pytest.fixture(autouse=True)
def gpu_facts(monkeypatch):
    monkeypatch.setattr(program, "FAKE_STDOUT", {
        "gpu02-ready": json.dumps(H100_FACTS), "gpu03-ready": json.dumps(L40S_FACTS),
        "gpu-smoke": json.dumps(SMOKE, sort_keys=True) + "\n"})


def ok(run):
    assert run.error is None, run.error
    return run


def release_of(run):
    [found] = run.of_type("kubernetes:helm.sh/v3:Release") and [
        r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.name == "gpu-operator"]
    return found


def gpu_settings() -> GpuSettings:
    raw = yaml.safe_load(GPU_STACK.read_text())["config"]["jhub:gpu"]
    return GpuSettings.model_validate(raw)


def test_release_gets_the_generated_values_in_its_namespace():
    run = ok(run_program(stack_config(GPU_STACK)))
    release = release_of(run)
    assert release.type == "kubernetes:helm.sh/v3:Release"
    assert release.inputs["namespace"] == "gpu-operator" and release.inputs["name"] == "gpu-operator"
    assert release.inputs["chart"] == "gpu-operator" and release.inputs["version"] == "v26.7.0"
    assert release.inputs["repositoryOpts"]["repo"] == "https://helm.ngc.nvidia.com/nvidia"
    assert release.inputs["values"] == chart_values(gpu_settings())
    assert release.inputs["disableOpenapiValidation"] is True
    assert release.inputs["values"]["nfd"]["enabled"] is True
    assert run.named("gpu-operator-namespace").inputs["metadata"]["name"] == "gpu-operator"


def test_pool_nodes_get_their_labels_and_auto_keeps_a_loaded_driver():
    run = ok(run_program(stack_config(GPU_STACK)))
    labels = {r.name: r.inputs["metadata"].get("labels") or {} for r in run.of_type("kubernetes:core/v1:NodePatch")}
    assert labels == {
        "gpu01-gpu-labels": {},  # CPU-only: nothing
        "gpu02-gpu-labels": {"nvidia.com/device-plugin.config": "h100-mig", "nvidia.com/mig.config": "all-1g.10gb",
                             "nvidia.com/gpu.deploy.driver": "false"},
        "gpu03-gpu-labels": {"nvidia.com/device-plugin.config": "l40s-shared"},
    }
    names = {r.name: r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:core/v1:NodePatch")}
    assert names == {"gpu01-gpu-labels": "gpu01", "gpu02-gpu-labels": "gpu02", "gpu03-gpu-labels": "gpu03"}


def test_host_driver_mode_labels_only_pool_nodes():
    data = yaml.safe_load(GPU_STACK.read_text())["config"]["jhub:gpu"]
    run = ok(run_program(stack_config(GPU_STACK, {"jhub:gpu": {**data, "driver": "host"}})))
    patches = {r.name: r.inputs["metadata"]["labels"] for r in run.of_type("kubernetes:core/v1:NodePatch")}
    assert sorted(patches) == ["gpu02-gpu-labels", "gpu03-gpu-labels"]
    assert all("nvidia.com/gpu.deploy.driver" not in labels for labels in patches.values())
    assert release_of(run).inputs["values"]["driver"]["enabled"] is False


def test_order_labels_then_release_then_smoke_test():
    run = ok(run_program(stack_config(GPU_STACK)))
    urns = {r.name: r.urn for r in run.registrations if r.type != "jhub:gpu:GpuOperator"}
    component = run.of_type("jhub:gpu:GpuOperator")[0].urn
    release, smoke = release_of(run), run.named("gpu-smoke")
    assert urns["gpu-operator-namespace"] in release.dependencies
    for node in ("gpu01", "gpu02", "gpu03"):
        assert urns[f"{node}-gpu-labels"] in release.dependencies
        assert urns[f"{node}-node"] in run.named(f"{node}-gpu-labels").dependencies
    assert urns["gpu01-node"] in release.dependencies  # the cluster is ready first
    assert urns["gpu-operator"] in smoke.dependencies
    for reg in run.registrations:
        if reg.name.startswith("gpu-") or reg.name.endswith("-gpu-labels"):
            assert reg.parent == component or reg.type == "jhub:gpu:GpuOperator"


def test_smoke_test_waits_with_the_kubeconfig_kept_secret_and_gives_the_gpus_output():
    run = ok(run_program(stack_config(GPU_STACK)))
    smoke = run.named("gpu-smoke")
    assert smoke.inputs["create"] == ".venv/bin/python -m components.gpu.smoke"
    # One secret value makes the whole environment secret: the kubeconfig never shows in the state or logs.
    assert program.is_secret_wrapper(smoke.inputs["environment"])
    env = smoke.inputs["environment"]["value"]
    assert "KUBECONFIG-SECRET" in env["JHUB_KUBECONFIG"]
    assert env["JHUB_SMOKE_TIMEOUT"] == "1800"
    assert env["JHUB_GPU_NODES"] == "gpu02,gpu03"  # gpu01's facts list no GPU
    assert env["JHUB_MIG_LAYOUTS"] == "gpu02=all-1g.10gb"
    urns = {r.name: r.urn for r in run.registrations}
    assert {urns["gpu02-node"], urns["gpu03-node"]} <= set(smoke.dependencies)
    assert smoke.inputs["triggers"] == [env["JHUB_SMOKE_RUN"]]
    assert run.outputs["gpus"] == SMOKE
    assert "gpus" not in run.secret_outputs
    assert not [s for _, s in program.plain_strings(smoke.inputs) if "KUBECONFIG-SECRET" in s]


def test_same_config_gives_byte_identical_inputs():
    def inputs():
        run = run_program(stack_config(GPU_STACK))
        return sorted((r.urn, json.dumps(r.inputs, sort_keys=True)) for r in run.registrations)

    assert inputs() == inputs()


def test_a_pool_change_reruns_the_smoke_test():
    data = yaml.safe_load(GPU_STACK.read_text())["config"]["jhub:gpu"]
    before = run_program(stack_config(GPU_STACK)).named("gpu-smoke").inputs["triggers"]
    data["pools"][1]["timeSlicing"]["replicas"] = 8
    after = run_program(stack_config(GPU_STACK, {"jhub:gpu": data})).named("gpu-smoke").inputs["triggers"]
    assert before != after


def _registrations(run):
    return sorted((r.type, r.urn, json.dumps(r.inputs, sort_keys=True), sorted(r.dependencies))
                  for r in run.registrations)


@pytest.mark.parametrize("stack", [THREE, GPU_STACK], ids=["three", "gpu"])
def test_feature_off_registers_exactly_what_no_gpu_key_does(stack):
    without = stack_config(stack)
    without.pop("jhub:gpu", None)
    off = {**without, "jhub:gpu": json.dumps({"operator": False, "driver": "host", "dcgmExporter": False})}
    run_off, run_without = ok(run_program(off)), ok(run_program(without))
    assert _registrations(run_off) == _registrations(run_without)
    assert not [r for r in run_off.registrations if r.type.startswith(GPU_TYPES) or r.name.startswith("gpu-")]
    assert "gpus" not in run_off.outputs


def test_air_gapped_release_uses_the_chart_from_the_bundle(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path)
    run = ok(run_program(stack_config(GPU_STACK, {"jhub:offline": {
        "mode": "air-gapped", "dir": str(images_dir), "chartsDir": str(charts_dir)}})))
    assert release_of(run).inputs["chart"] == f"{charts_dir}/gpu-operator-v26.7.0.tgz"
    uploaded = " ".join(json.dumps(r.inputs) for r in run.registrations if r.name.endswith("-images"))
    for name in ("nvidia-gpu-operator-v26.7.0.tar", "nvidia-driver-595.91.07-ubuntu24.04.tar",
                 "nvidia-k8s-mig-manager-v0.15.0.tar", "nvidia-cuda-sample-vectoradd-cuda12.5.0-ubuntu22.04.tar"):
        assert name in uploaded


def test_air_gapped_preflight_names_missing_gpu_images(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path)
    (images_dir / "images" / "nvidia-k8s-mig-manager-v0.15.0.tar").unlink()
    (charts_dir / "gpu-operator-v26.7.0.tgz").unlink()
    run = run_program(stack_config(GPU_STACK, {"jhub:offline": {
        "mode": "air-gapped", "dir": str(images_dir), "chartsDir": str(charts_dir)}}))
    assert isinstance(run.error, PreflightError), run.error
    text = str(run.error)
    assert "nvidia-k8s-mig-manager-v0.15.0.tar is missing" in text and "gpu-operator-v26.7.0.tgz" in text
    assert run.resources() == []


def test_adding_a_node_reruns_the_smoke_test():
    before = run_program(stack_config(GPU_STACK)).named("gpu-smoke").inputs["triggers"]
    nodes = yaml.safe_load(GPU_STACK.read_text())["config"]["jhub:nodes"] + [
        {"name": "gpu04", "host": "10.10.0.4", "role": "worker"}]
    after = run_program(stack_config(GPU_STACK, {"jhub:nodes": nodes})).named("gpu-smoke").inputs["triggers"]
    assert before != after


def test_the_one_local_node_example_takes_the_operator_too():
    run = ok(run_program(stack_config(ROOT / "Pulumi.dev.yaml", {"jhub:gpu": {"operator": True}})))
    [patch] = run.of_type("kubernetes:core/v1:NodePatch")  # driver auto: the node's facts decide its label
    assert release_of(run).inputs["values"]["driver"]["enabled"] is True
    assert run.named("gpu-smoke").inputs["create"].endswith("components.gpu.smoke")
    assert patch.inputs["metadata"]["labels"] == {}
