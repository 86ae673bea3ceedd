"""What an air-gapped install of the MPI Operator needs: its manifest (charts.lock `manifests:`) and its image,
both with the feature `mpi-operator`."""

from __future__ import annotations

from ..settings import Settings
from ..settings.image_refs import full_image
from .manifest import MANIFEST_NAME, MANIFEST_VERSION, OPERATOR_IMAGE

FEATURE = "mpi-operator"


def bundle_tags(settings: Settings) -> set[str]:
    return {FEATURE}


def images(settings: Settings) -> list[tuple[str, str]]:
    return [(f"manifest {MANIFEST_NAME} {MANIFEST_VERSION}: operator", full_image(OPERATOR_IMAGE))]
