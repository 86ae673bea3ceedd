"""README.md names every `jhub:gpu` key, the old variable it replaces, and how to read `pulumi stack output gpus`."""

from __future__ import annotations

import re

from components.settings.gpu import GpuSettings
from tests.jupyterhub.test_docs import DOC, keys


def test_every_gpu_key_is_documented():
    code = " ".join(re.findall(r"`([^`\n]+)`", DOC) + re.findall(r"```[a-z]*\n(.*?)```", DOC, flags=re.S))
    missing = sorted(k for k in keys(GpuSettings) if not re.search(rf"\b{re.escape(k)}\b", code))
    assert not missing, f"jhub:gpu keys missing from README.md: {missing}"


def test_old_variable_and_gpus_output_are_explained():
    assert "| `USE_GPU_OPERATOR` | `jhub:gpu.operator`" in DOC
    assert "`jhub:gpu.operator` (not deployed" not in DOC
    section = DOC.split("### The CUDA smoke test and `pulumi stack output gpus`")[1]
    for word in ("`model`", "`count`", "`driver`", "`cuda`", "$ pulumi stack output gpus"):
        assert word in section
