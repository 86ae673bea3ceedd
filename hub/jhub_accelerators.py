"""What GPUs a node advertises, read the way the NVIDIA device plugin and GPU Feature Discovery (GFD) publish them.

A node's accelerators fall into *pools*; each pool is one kind of unit a server can ask for:

* **whole GPUs**: resource `nvidia.com/gpu`, product label `nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB`.
* **MIG, strategy `mixed`**: one resource per MIG profile, `nvidia.com/mig-1g.10gb`, `nvidia.com/mig-3g.40gb`
  (GFD adds `nvidia.com/mig-1g.10gb.count` etc.); the product label stays the full GPU's.
* **MIG, strategy `single`**: the slices are advertised as `nvidia.com/gpu`; GFD sets
  `nvidia.com/mig.strategy=single` and overrides the product label to `<model>-MIG-1g.10gb`.
* **shared (time-slicing or MPS)**: `nvidia.com/gpu` multiplied by the replicas, with `nvidia.com/gpu.replicas=N`,
  `nvidia.com/gpu.sharing-strategy=time-slicing|mps` and the product `<model>-SHARED` (renameByDefault=false); or
  the resource `nvidia.com/gpu.shared` (renameByDefault=true), product label unchanged.
* **shared MIG slices**: time-slicing on top of MIG. Strategy single: product `<model>-MIG-<profile>-SHARED` and
  `nvidia.com/gpu.replicas=N`; strategy mixed: the slice resource multiplied by N (or `<resource>.shared` when
  renamed), with the per-resource label `nvidia.com/mig-<profile>.replicas=N`.

Each unit has a *weight*, its fraction of one physical GPU: a whole GPU 1, a shared replica 1/N, a MIG slice
g/S (g compute slices of the profile `<g>g.<memory>`, S = 7 slices per GPU; 4 on an A30), a shared MIG slice
g/S/N. The weights only split a node's CPU and memory among its units (see jhub_profiles).
"""

import re
from dataclasses import dataclass
from decimal import Decimal

WHOLE, MIG, SHARED = "gpu", "mig", "shared"
# Label values GFD sets (nvidia.com/...); the product label's key is configurable (profiles.gpuProductLabel).
MIG_STRATEGY_LABEL = "nvidia.com/mig.strategy"
REPLICAS_LABEL = "nvidia.com/gpu.replicas"
SHARING_LABEL = "nvidia.com/gpu.sharing-strategy"
UNLABELLED_GPU = "GPU"  # GPU nodes without the product label (a device plugin without GFD)
_MIG_PROFILE = re.compile(r"^(\d+)g\.(\d+)gb$")
_MIG_IN_PRODUCT = re.compile(r"^(.*)-MIG-(\d+g\.\d+gb)(-SHARED)?$")


def slices_per_gpu(model: str) -> int:
    return 4 if "A30" in model.upper() else 7


@dataclass(frozen=True)
class Pool:
    kind: str  # WHOLE | MIG | SHARED
    resource: str  # the extended resource a server of this pool requests
    product: str  # the product label value that selects its nodes ("" when the nodes have none)
    model: str  # the GPU model: the product without -MIG-<profile> / -SHARED
    profile: str = ""  # MIG profile, e.g. 1g.10gb
    replicas: int = 1  # shared (and shared MIG): servers per GPU or per slice
    sharing: str = ""  # time-slicing | mps when replicas > 1

    @property
    def weight(self) -> Decimal:
        if self.kind == SHARED:
            return Decimal(1) / Decimal(self.replicas)
        if self.kind == MIG:
            slices = Decimal(int(_MIG_PROFILE.match(self.profile).group(1)))
            return slices / Decimal(slices_per_gpu(self.model)) / Decimal(self.replicas)
        return Decimal(1)

    @property
    def slug(self) -> str:
        base = {WHOLE: "gpu", MIG: "mig", SHARED: "shared"}[self.kind]
        parts = [self.model] + ([self.profile] if self.kind == MIG else [])
        if self.kind == MIG and f"-MIG-{self.profile}" in self.product:
            parts.append("single")  # strategy single: the slices are nvidia.com/gpu on their own nodes
        if self.kind == MIG and self.replicas > 1:
            parts.append("shared")
        text = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-") or "unknown"
        return f"{base}-{text}"

    @property
    def title(self) -> str:
        """E.g. 'NVIDIA A100-SXM4-80GB, MIG 1g.10gb slice' (GFD writes the product with dashes for spaces)."""
        model = re.sub(r"^NVIDIA-", "NVIDIA ", self.model)
        how = "MPS" if self.sharing == "mps" else "time-sliced"
        if self.kind == MIG:
            shared = f", shared ({how}, {self.replicas} per slice)" if self.replicas > 1 else ""
            return f"{model}, MIG {self.profile} slice{shared}"
        if self.kind == SHARED:
            return f"{model}, shared ({how}, {self.replicas} per GPU)"
        return model if self.model == UNLABELLED_GPU else f"{model}, whole GPU"

    @property
    def unit(self) -> str:
        if self.kind == MIG:
            return f"{'shared ' if self.replicas > 1 else ''}MIG {self.profile} slice"
        return "shared GPU" if self.kind == SHARED else "GPU"


def _replicas(labels: dict, key: str = REPLICAS_LABEL) -> int:
    try:
        return max(1, int(labels.get(key, "1")))
    except ValueError:
        return 1


def node_pools(labels: dict, devices: dict, cfg: dict) -> list[tuple[Pool, int]]:
    """(pool, allocatable units) for each pool the node advertises, sorted by slug.

    `devices` maps extended resource names to allocatable counts; `cfg` is the validated `profiles` section.
    """
    product = labels.get(cfg["gpuProductLabel"], "")
    pools = []
    whole = devices.get(cfg["gpuResource"], 0)
    if whole:
        mig = _MIG_IN_PRODUCT.match(product)
        replicas = _replicas(labels)
        if labels.get(MIG_STRATEGY_LABEL) == "single" and mig:
            pools.append((Pool(MIG, cfg["gpuResource"], product, mig.group(1), profile=mig.group(2),
                               replicas=replicas, sharing=labels.get(SHARING_LABEL, "time-slicing")
                               if replicas > 1 else ""), whole))
        elif replicas > 1:
            model = product[: -len("-SHARED")] if product.endswith("-SHARED") else product
            pools.append((Pool(SHARED, cfg["gpuResource"], product, model or UNLABELLED_GPU, replicas=replicas,
                               sharing=labels.get(SHARING_LABEL, "time-slicing")), whole))
        else:
            pools.append((Pool(WHOLE, cfg["gpuResource"], product, product or UNLABELLED_GPU), whole))
    shared = devices.get(cfg["sharedGpuResource"], 0)
    if shared:
        pools.append((Pool(SHARED, cfg["sharedGpuResource"], product, product or UNLABELLED_GPU,
                           replicas=_replicas(labels), sharing=labels.get(SHARING_LABEL, "time-slicing")), shared))
    prefix = cfg["migResourcePrefix"]
    for resource in sorted(devices):
        profile = _mig_profile(resource, prefix)
        if devices[resource] and profile:
            # GFD labels each MIG resource: nvidia.com/mig-1g.10gb.replicas, .sharing-strategy
            label = prefix + profile
            replicas = _replicas(labels, f"{label}.replicas")
            sharing = labels.get(f"{label}.sharing-strategy", "time-slicing") if replicas > 1 else ""
            pools.append((Pool(MIG, resource, product, product or UNLABELLED_GPU, profile=profile,
                               replicas=replicas, sharing=sharing), devices[resource]))
    return sorted(pools, key=lambda p: p[0].slug)


def _mig_profile(resource: str, prefix: str) -> str:
    """'1g.10gb' for nvidia.com/mig-1g.10gb (or its renamed shared form nvidia.com/mig-1g.10gb.shared), else ''."""
    if not resource.startswith(prefix):
        return ""
    profile = resource[len(prefix):].removesuffix(".shared")
    return profile if _MIG_PROFILE.match(profile) else ""


def is_accelerator(resource: str, cfg: dict) -> bool:
    return resource in (cfg["gpuResource"], cfg["sharedGpuResource"]) or bool(
        _mig_profile(resource, cfg["migResourcePrefix"]))
