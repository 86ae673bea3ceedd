"""`jhub:infiniband`: the NVIDIA Network Operator with the RDMA shared device plugin."""

from __future__ import annotations

from typing import ClassVar

from .not_yet import NotYet


class InfinibandSettings(NotYet):
    enabled: bool = False
    what: ClassVar[str] = "the NVIDIA Network Operator (InfiniBand/RDMA)"
