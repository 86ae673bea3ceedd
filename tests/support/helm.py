"""Render the real upstream charts of ../shared/charts/ with a real helm, as the cluster would install them.

`render()` runs `helm template` with the values the program generates and returns the manifests as dicts.
helm comes from `scripts/install_helm.py` (./scripts/test.sh runs it); the charts are read in place from
../shared/charts/ and never copied. Where either is missing, the test skips and says why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED_CHARTS = ROOT.parent / "shared" / "charts"
# What MicroK8s 1.32 serves, so charts that gate objects on API versions render as on a real cluster.
KUBE_VERSION = "1.32.0"


def helm_binary() -> str:
    found = Path(sys.prefix) / "bin" / "helm"
    if found.is_file():
        return str(found)
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    pytest.skip("helm is not installed: run .venv/bin/python scripts/install_helm.py (./scripts/test.sh does)")


def shared_chart(name: str) -> Path:
    path = SHARED_CHARTS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared/ is not beside this clone)")
    return path


def render(chart: str, values: dict, *, release: str, namespace: str, api_versions: tuple[str, ...] = (),
           include_crds: bool = False, tmp_path: Path | None = None) -> list[dict]:
    """`helm template` of ../shared/charts/<chart> with `values`; every rendered object, in order."""
    archive = shared_chart(chart)
    args = [helm_binary(), "template", release, str(archive), "--namespace", namespace,
            "--kube-version", KUBE_VERSION, "--values", "-"]
    for api in api_versions:
        args += ["--api-versions", api]
    if include_crds:
        args.append("--include-crds")
    done = subprocess.run(args, input=json.dumps(values), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"helm template {chart} failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind]
