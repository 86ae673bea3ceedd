"""Every feature of jhub, in deployment order: the one list `program.py` deploys and `scripts/bundle.py`
bundles. A new feature is a folder under `components/` that exports `FEATURE`, added here."""

from __future__ import annotations

from .cluster import FEATURE as CLUSTER
from .feature import Feature
from .gpu import FEATURE as GPU
from .jupyterhub import FEATURE as JUPYTERHUB
from .mpi import FEATURE as MPI
from .network import FEATURE as NETWORK
from .portal import FEATURE as PORTAL

FEATURES: tuple[Feature, ...] = (
    CLUSTER,
    GPU,
    NETWORK,
    MPI,
    JUPYTERHUB,
    PORTAL,  # after the hub: it takes the hub's generated tokens
)


def enabled_features(settings) -> tuple[Feature, ...]:
    return tuple(feature for feature in FEATURES if feature.enabled(settings))
