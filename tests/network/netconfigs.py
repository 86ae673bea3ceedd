"""Stack configs and node facts for the Network Operator and MPI tests."""

from __future__ import annotations

import json

CP = {"name": "gpu01", "host": "10.0.0.1", "role": "control-plane"}
W2 = {"name": "gpu02", "host": "10.0.0.2"}


def ib_port(device: str, netdev: str, link_layer: str = "InfiniBand") -> dict:
    """One port as hosts/facts.sh prints it."""
    return {"device": device, "port": 1, "state": "ACTIVE", "rate": "200 Gb/sec (4X HDR)", "linkLayer": link_layer,
            "netdevs": [netdev]}


# gpu01 has two HDR ports, gpu02 one InfiniBand port and one RoCE (Ethernet) port
IB_FACTS = {"gpu01": {"infiniband": [ib_port("mlx5_0", "ib0"), ib_port("mlx5_1", "ib1")]},
            "gpu02": {"infiniband": [ib_port("mlx5_0", "ib0"), ib_port("mlx5_2", "enp65s0f0", "Ethernet")]}}


def config(nodes=None, **sections) -> dict[str, str]:
    values = {"jhub:nodes": json.dumps([CP, W2] if nodes is None else nodes),
              "jhub:offline": json.dumps({"mode": "online"}),
              "jhub:hub": json.dumps({"adminUsers": ["admin"], "storage": {"type": "nfs", "server": "10.0.0.50",
                                                                          "path": "/exports/jhub"}})}
    for key, value in sections.items():
        values[f"jhub:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return values
