"""docs/mpijob-example.yaml, as a user runs it: valid against the MPIJob CRD's own schema (from the v0.8.0
manifest), admitted in their namespace, and within their ResourceQuota's rules (every container states
requests and limits)."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from tests.mpi.test_mpi_admission import ALICE_NS, admitted
from tests.mpi.test_mpi_program import manifest_text
from tests.support.crd import strict
from tests.support.program import ROOT

EXAMPLE = ROOT / "docs" / "mpijob-example.yaml"


def crd_schema() -> dict:
    [crd] = [d for d in yaml.safe_load_all(manifest_text())
             if d and d["kind"] == "CustomResourceDefinition" and d["metadata"]["name"] == "mpijobs.kubeflow.org"]
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v2beta1"]
    return version["schema"]["openAPIV3Schema"]


def example(user: str = "alice") -> dict:
    return yaml.safe_load(EXAMPLE.read_text().replace("__USER__", user))  # what the sed line does


def test_example_is_valid_against_the_crd_schema():
    job = example()
    assert (job["apiVersion"], job["kind"]) == ("kubeflow.org/v2beta1", "MPIJob")
    jsonschema.validate(job, strict(crd_schema()))


def test_a_misspelt_field_is_caught():
    job = example()
    job["spec"]["slotPerWorker"] = job["spec"].pop("slotsPerWorker")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(job, strict(crd_schema()))


def test_a_broken_example_is_refused_by_the_schema():
    job = example()
    job["spec"]["mpiImplementation"] = "LAM"  # not one of OpenMPI, Intel, MPICH
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(job, crd_schema())


@pytest.mark.parametrize("replica", ["Launcher", "Worker"])
def test_its_pods_are_admitted_in_the_users_namespace_and_state_their_resources(replica):
    template = example()["spec"]["mpiReplicaSpecs"][replica]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": copy.deepcopy(template["metadata"]), "spec": template["spec"]}
    assert admitted(pod, ALICE_NS) == []
    for container in template["spec"]["containers"]:
        assert set(container["resources"]) == {"requests", "limits"}
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_without_the_users_name_its_pods_are_refused():
    template = example("bob")["spec"]["mpiReplicaSpecs"]["Worker"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": template["metadata"], "spec": template["spec"]}
    assert admitted(pod, ALICE_NS)
