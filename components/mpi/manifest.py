"""The Kubeflow MPI Operator this version applies: one upstream manifest (CRD, RBAC, Deployment in the
`mpi-operator` namespace) and the image it names. The manifest comes from the bundle (charts.lock `manifests:`)
on an air-gapped site, from its URL online."""

from __future__ import annotations

MANIFEST_NAME = "mpi-operator"
MANIFEST_VERSION = "v0.8.0"
MANIFEST_URL = "https://raw.githubusercontent.com/kubeflow/mpi-operator/v0.8.0/deploy/v2beta1/mpi-operator.yaml"
OPERATOR_IMAGE = "mpioperator/mpi-operator:0.8.0"  # as the manifest's Deployment names it
OPERATOR_NAMESPACE = "mpi-operator"
MPIJOB_API = "kubeflow.org/v2beta1"
