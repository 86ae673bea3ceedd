"""Keys of the config contract whose features a later version brings.

They are parsed strictly, so a typo is caught today, and asking for a feature that this version does not
deploy yet is refused instead of being silently ignored.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from .base import StrictModel


class _NotYet(StrictModel):
    switch: ClassVar[str] = "enabled"
    what: ClassVar[str] = ""

    @model_validator(mode="after")
    def _refuse(self) -> Any:
        if getattr(self, self.switch):
            raise ValueError(f"{self.what} is not deployed by this version of jhub yet; leave it off")
        return self


class GpuSettings(_NotYet):
    operator: bool = False
    switch: ClassVar[str] = "operator"
    what: ClassVar[str] = "the NVIDIA GPU Operator"


class InfinibandSettings(_NotYet):
    enabled: bool = False
    what: ClassVar[str] = "the NVIDIA Network Operator (InfiniBand/RDMA)"


class MpiSettings(_NotYet):
    enabled: bool = False
    what: ClassVar[str] = "the MPI Operator"


RESERVED_SECTIONS = {"gpu": GpuSettings, "infiniband": InfinibandSettings, "mpi": MpiSettings}
