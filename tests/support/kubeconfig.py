"""Point the hub's Kubernetes client at a test's kubeconfig, for one test module.

KubeSpawner loads a kubeconfig when it is made. kubernetes_asyncio reads KUBECONFIG once, at its first import,
into KUBE_CONFIG_DEFAULT_LOCATION, and an earlier module may have imported it with none set (tests/mpi imports
hub/jhub_mpi.py, which imports kubespawner). So both the variable and that frozen default point at the file,
and kubespawner's cached load_config is cleared on the way in and out; nothing leaks to later modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def pointed_at(path: Path, text: str) -> Iterator[Path]:
    from kubernetes_asyncio.config import kube_config
    from kubespawner.clients import load_config

    path.write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(path))
        patch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        load_config.cache_clear()
        try:
            yield path
        finally:
            load_config.cache_clear()
