"""`jhub:infiniband`: the NVIDIA Network Operator with the RDMA shared device plugin.

    jhub:infiniband:
      enabled: true
      resourceName: rdma/rdma_shared_device_a     # <prefix>/<name>: what servers request
      selectors: {ifNames: [ib0, ib1]}            # default: the InfiniBand ports found in the nodes' facts
      hcaMax: 63                                  # pods that may share one device
      nodeSelector: {feature.node.kubernetes.io/pci-15b3.present: "true"}
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import Field, field_validator

from . import validators as check
from .base import StrictModel

DEFAULT_RESOURCE = "rdma/rdma_shared_device_a"
# NFD labels every node with a Mellanox (PCI vendor 15b3) device; the device plugin runs only there.
DEFAULT_NODE_SELECTOR = {"feature.node.kubernetes.io/pci-15b3.present": "true"}
DEFAULT_NAMESPACE = "nvidia-network-operator"
# The device plugin's resourcePrefix (a DNS subdomain) and resourceName (an extended-resource name part).
_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_HEX4_RE = re.compile(r"^[0-9a-f]{4}$")
LINK_TYPES = ("infiniband", "ether")


class RdmaSelectors(StrictModel):
    """The RDMA shared device plugin's selectors: a device joins the resource when it matches all that are set."""

    if_names: list[str] = Field(default_factory=list)
    vendors: list[str] = Field(default_factory=list)  # PCI vendor IDs, e.g. 15b3 (Mellanox)
    device_ids: list[str] = Field(default_factory=list, alias="deviceIDs")  # PCI device IDs, e.g. 101b
    link_types: list[str] = Field(default_factory=list)  # infiniband | ether

    @field_validator("if_names")
    @classmethod
    def _interfaces(cls, names: list[str]) -> list[str]:
        return sorted({check.interface(n) for n in names})

    @field_validator("vendors", "device_ids")
    @classmethod
    def _hex_ids(cls, ids: list[str]) -> list[str]:
        for value in ids:
            if not _HEX4_RE.match(value):
                raise ValueError(f'must be 4 lowercase hex digits as lspci -n shows them (e.g. "15b3"), got "{value}"')
        return sorted(set(ids))

    @field_validator("link_types")
    @classmethod
    def _link_types(cls, kinds: list[str]) -> list[str]:
        for value in kinds:
            if value not in LINK_TYPES:
                raise ValueError(f'must be "infiniband" or "ether", got "{value}"')
        return sorted(set(kinds))

    @property
    def empty(self) -> bool:
        return not (self.if_names or self.vendors or self.device_ids or self.link_types)

    def plugin_selectors(self) -> dict:
        """As the device plugin's config spells them (only those that are set)."""
        found = {"ifNames": self.if_names, "vendors": self.vendors, "deviceIDs": self.device_ids,
                 "linkTypes": self.link_types}
        return {k: v for k, v in sorted(found.items()) if v}


class InfinibandSettings(StrictModel):
    enabled: bool = False
    resource_name: str = DEFAULT_RESOURCE
    selectors: Optional[RdmaSelectors] = None
    hca_max: int = Field(default=63, ge=1, le=10000)
    node_selector: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_NODE_SELECTOR))
    namespace: str = DEFAULT_NAMESPACE

    @field_validator("resource_name")
    @classmethod
    def _resource(cls, value: str) -> str:
        prefix, slash, name = value.partition("/")
        if not slash or not _PREFIX_RE.match(prefix) or not _NAME_RE.match(name) or len(prefix) > 253:
            raise ValueError('must be "<prefix>/<name>" like "rdma/rdma_shared_device_a": a lowercase DNS '
                             f'prefix, one "/", then letters, digits, "-", "_" or ".", got "{value}"')
        if prefix in ("kubernetes.io", "k8s.io") or prefix.endswith((".kubernetes.io", ".k8s.io")):
            raise ValueError(f'must not use the "{prefix}" prefix, which Kubernetes reserves, got "{value}"')
        return value

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels:
            raise ValueError("must name at least one node label (the InfiniBand nodes), e.g. "
                             '{"feature.node.kubernetes.io/pci-15b3.present": "true"}')
        for key, value in labels.items():
            check.label_key(key)
            check.label_value(key, value)
        return dict(sorted(labels.items()))

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check.k8s_namespace(value)

    @field_validator("selectors")
    @classmethod
    def _selectors_not_empty(cls, value: Optional[RdmaSelectors]) -> Optional[RdmaSelectors]:
        if value is not None and value.empty:
            raise ValueError("must set at least one of ifNames, vendors, deviceIDs, linkTypes; or leave "
                             "selectors out to use the InfiniBand ports found in the nodes' facts")
        return value

    @property
    def resource_prefix(self) -> str:
        return self.resource_name.partition("/")[0]

    @property
    def resource_short_name(self) -> str:
        return self.resource_name.partition("/")[2]
