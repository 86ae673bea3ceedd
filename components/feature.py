"""What a feature is to the program and to the bundler.

A feature is a folder under `components/` (`cluster/`, `jupyterhub/`, `gpu/` ...) that exports one `Feature`:
what the offline bundle must hold for a config (lock feature tags and the images the config names), and how it
is deployed. `components/features.py` lists them, in deployment order; `program.py` deploys them and
`scripts/bundle.py` collects their needs, both from that one tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import pulumi

from .bundle.locks import Lock
from .settings import Settings


@dataclass
class DeployContext:
    """What features deployed so far hand to the ones after them."""

    settings: Settings
    lock: Lock
    images_dir: Path
    charts_dir: Path
    control_plane_address: str  # empty for a lone local node (its address step finds its own)
    parts: dict[str, Any] = field(default_factory=dict)  # feature name -> what its deploy returned

    @property
    def provider(self):
        return self.parts["cluster"].cluster.provider

    @property
    def cluster_ready(self) -> list[pulumi.Resource]:
        """Resources Kubernetes objects wait for: the control plane's node is Ready and labelled."""
        cluster = self.parts["cluster"].cluster
        return [cluster.nodes_ready[self.settings.control_plane.name]]


def _nothing(settings: Settings) -> tuple:
    return ()


@dataclass(frozen=True)
class Feature:
    name: str
    # Deployed, and bundled, for this config?
    enabled: Callable[[Settings], bool]
    # Lock feature tags (charts.lock / images.lock `features:`) the config needs.
    bundle_tags: Callable[[Settings], Iterable[str]]
    # (config key path or chart part, image reference) for every image the feature runs for this config.
    images: Callable[[Settings], Iterable[tuple[str, str]]] = _nothing
    # Registers the feature's resources; what it returns is `DeployContext.parts[name]`.
    deploy: Optional[Callable[[DeployContext], Any]] = None
    # Stack outputs: (name, value) pairs from what `deploy` returned.
    outputs: Optional[Callable[[Any, DeployContext], Iterable[tuple[str, Any]]]] = None
