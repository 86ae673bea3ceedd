"""Checks of `jhub:gpu` against itself and `jhub:nodes`: pools named once, selecting distinct labels that match
configured nodes, and no node in two pools. Whether the operator's images are bundled is the preflight's job."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import key_path

if TYPE_CHECKING:
    from . import Settings
    from .cluster import Node
    from .gpu import GpuPool


def pool_nodes(pool: "GpuPool", nodes) -> list["Node"]:
    """The configured nodes a pool selects: every selector label present with that value."""
    return [node for node in nodes if all(node.labels.get(k) == v for k, v in pool.node_selector.items())]


def check_gpu(settings: "Settings") -> list[str]:
    gpu = settings.gpu
    problems: list[str] = []
    if not gpu.operator:
        if gpu.pools:
            problems.append(f"{key_path('gpu', ('pools',))}: GPU sharing is done by the GPU Operator; set "
                            "jhub:gpu.operator: true, or remove the pools")
        return problems
    for index, entry in enumerate(settings.microk8s.addons):
        name = entry.split(":", 1)[0]
        if name in ("gpu", "nvidia"):
            problems.append(f'{key_path("microk8s", ("addons", index))}: the MicroK8s addon "{name}" installs a '
                            "second GPU Operator beside jhub:gpu.operator; remove the addon")
    mig_pools = [(i, p) for i, p in enumerate(gpu.pools) if p.mig is not None]
    for index, pool in mig_pools[1:]:
        first, other = mig_pools[0]
        if pool.mig.strategy != other.mig.strategy:
            problems.append(f'{key_path("gpu", ("pools", index, "mig", "strategy"))}: is "{pool.mig.strategy}" but '
                            f'jhub:gpu.pools[{first}] uses "{other.mig.strategy}": the device plugin takes one MIG '
                            "strategy for the whole cluster; use the same in every MIG pool")
    names: dict[str, int] = {}
    selectors: dict[tuple, int] = {}
    owner: dict[str, int] = {}
    for index, pool in enumerate(gpu.pools):
        where = key_path("gpu", ("pools", index))
        if pool.name in names:
            problems.append(f'{where}.name: "{pool.name}" is already the name of jhub:gpu.pools[{names[pool.name]}]; '
                            "give each pool its own name")
        names.setdefault(pool.name, index)
        selector = tuple(sorted(pool.node_selector.items()))
        if selector in selectors:
            problems.append(f"{where}.nodeSelector: selects the same labels as jhub:gpu.pools[{selectors[selector]}]; "
                            "merge the two pools, or give their nodes distinct labels in jhub:nodes[].labels")
            continue
        selectors[selector] = index
        matched = pool_nodes(pool, settings.nodes)
        if not matched:
            wanted = ", ".join(f"{k}={v}" for k, v in selector)
            problems.append(f"{where}.nodeSelector: matches no node of jhub:nodes ({wanted}); add these labels "
                            "to the pool's nodes in jhub:nodes[].labels, or fix the selector")
        for node in matched:
            if node.name in owner:
                problems.append(f'{where}.nodeSelector: node "{node.name}" is already in pool '
                                f'"{gpu.pools[owner[node.name]].name}" (jhub:gpu.pools[{owner[node.name]}]); a node '
                                "shares its GPUs one way: make the selectors disjoint")
            else:
                owner[node.name] = index
    return problems
