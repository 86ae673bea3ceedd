"""The NicClusterPolicy (pure): the RDMA shared device plugin with the configured resource and selectors.

Selectors come from `jhub:infiniband.selectors`, else from the InfiniBand ports the nodes' facts show
(hosts/facts.sh: `infiniband: [{device, port, state, rate, linkLayer, netdevs}]`). The facts are known only
at deploy time, so `policy_from_facts` runs inside `Output.apply` and returns plain values only.
"""

from __future__ import annotations

import json
from typing import Mapping

from ..settings.base import ConfigError, key_path
from ..settings.infiniband import InfinibandSettings
from .chart import CRD_API, POLICY_NAME, RDMA_SHARED_DP_IMAGE


def selectors_from_facts(facts_by_node: Mapping[str, dict]) -> dict:
    """`{"ifNames": [...]}` of every InfiniBand port's interface on any node; `{}` when none was seen."""
    names = set()
    for facts in facts_by_node.values():
        for port in (facts or {}).get("infiniband") or []:
            if str(port.get("linkLayer") or "").lower() == "infiniband":
                names.update(n for n in port.get("netdevs") or [] if isinstance(n, str) and n)
    return {"ifNames": sorted(names)} if names else {}


def chosen_selectors(ib: InfinibandSettings, facts_by_node: Mapping[str, dict]) -> dict:
    if ib.selectors is not None:
        return ib.selectors.plugin_selectors()
    found = selectors_from_facts(facts_by_node)
    if not found:
        seen = ", ".join(sorted(facts_by_node)) or "none"
        raise ConfigError([
            f"{key_path('infiniband', ('selectors',))}: not set, and no InfiniBand device in the facts of any node "
            f"(nodes: {seen}); set selectors (ifNames, vendors, deviceIDs or linkTypes), e.g. "
            "pulumi config set --path 'jhub:infiniband.selectors.ifNames[0]' ib0, or turn jhub:infiniband.enabled off"])
    return found


def plugin_config(ib: InfinibandSettings, selectors: dict) -> str:
    """The device plugin's JSON config, byte-stable (sorted keys)."""
    return json.dumps({"configList": [{
        "resourceName": ib.resource_short_name,
        "resourcePrefix": ib.resource_prefix,
        "rdmaHcaMax": ib.hca_max,
        "selectors": selectors,
    }]}, sort_keys=True, separators=(",", ":"))


def nic_cluster_policy(ib: InfinibandSettings, selectors: dict) -> dict:
    repo, image, tag = RDMA_SHARED_DP_IMAGE
    terms = [{"key": k, "operator": "In", "values": [v]} for k, v in sorted(ib.node_selector.items())]
    return {
        "apiVersion": CRD_API,
        "kind": "NicClusterPolicy",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/managed-by": "jhub",
                                                     "app.kubernetes.io/part-of": "jhub"}},
        "spec": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": terms}]}},
            "rdmaSharedDevicePlugin": {
                "image": image, "repository": repo, "version": tag,
                "config": plugin_config(ib, selectors),
            },
        },
    }


def policy_from_facts(ib: InfinibandSettings, facts_by_node: Mapping[str, dict]) -> dict:
    return nic_cluster_policy(ib, chosen_selectors(ib, facts_by_node))
