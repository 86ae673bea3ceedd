"""README.md documents every jhub:infiniband and jhub:mpi key and the old variables they replace."""

from __future__ import annotations

import pytest

from components.settings.infiniband import InfinibandSettings
from components.settings.mpi import MpiSettings
from tests.jupyterhub.test_docs import DOC, keys


def section(title: str) -> str:
    start = DOC.index(f"## {title}")
    return DOC[start:DOC.index("\n## ", start + 3)]


@pytest.mark.parametrize("model,title", [(InfinibandSettings, "InfiniBand and RDMA: `jhub:infiniband`"),
                                         (MpiSettings, "MPI jobs: `jhub:mpi`")])
def test_every_key_is_in_its_section(model, title):
    text = section(title)
    missing = sorted(k for k in keys(model) if f"`{k}`" not in text)
    assert not missing, f"{title}: keys missing: {missing}"


@pytest.mark.parametrize("old,key", [("ENABLE_IB", "jhub:infiniband.enabled"), ("ENABLE_MPI_OPERATOR", "jhub:mpi.enabled")])
def test_old_variable_maps_to_its_key(old, key):
    assert any(f"`{old}`" in line and f"`{key}`" in line for line in DOC.splitlines())
