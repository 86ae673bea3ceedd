"""The GPU feature's plain manifests are valid Kubernetes objects (kubernetes-validate, the real API schemas)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from components.gpu import manifests

K8S_VERSION = "1.32"


def valid(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


@pytest.mark.parametrize("manifest", [
    manifests.namespace(),
    manifests.smoke_job("gpu02", "nvidia.com/gpu", 1800, "0123456789abcdef"),
    manifests.smoke_job("gpu03", "nvidia.com/mig-1g.10gb", 60, "run"),
    manifests.smoke_job("n" * 63, "nvidia.com/gpu.shared", 600, "run"),
], ids=["namespace", "smoke-whole", "smoke-mig", "smoke-long-node-name"])
def test_manifests_are_valid(manifest):
    valid(manifest)


def test_the_validator_catches_a_broken_job():
    broken = manifests.smoke_job("gpu02", "nvidia.com/gpu", 60, "run")
    broken["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": ["nvidia.com/gpu"]}
    with pytest.raises(kubernetes_validate.ValidationError):
        valid(broken)


def test_smoke_job_runs_on_its_node_with_one_gpu_and_a_deadline():
    job = manifests.smoke_job("gpu02", "nvidia.com/mig-1g.10gb", 900, "run")
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "gpu02"}
    assert pod["containers"][0]["resources"] == {"limits": {"nvidia.com/mig-1g.10gb": "1"}}
    assert job["spec"]["activeDeadlineSeconds"] == 900 and job["spec"]["backoffLimit"] == 0
    assert pod["restartPolicy"] == "Never"
    script = pod["containers"][0]["command"][-1]
    assert "nvidia-smi" in script and "/cuda-samples/vectorAdd" in script


def test_job_names_stay_dns_labels_and_distinct():
    long_a, long_b = "a" * 60 + "x", "a" * 60 + "y"
    names = {manifests.smoke_job_name(n) for n in (long_a, long_b)}
    assert len(names) == 2 and all(len(n) <= 63 for n in names)
    assert manifests.smoke_job_name("gpu02") == "gpu-smoke-gpu02"


def test_namespace_allows_privileged_operands():
    assert manifests.namespace()["metadata"]["labels"] == {"pod-security.kubernetes.io/enforce": "privileged"}
