"""`jhub:gpu`: the NVIDIA GPU Operator."""

from __future__ import annotations

from typing import ClassVar

from .not_yet import NotYet


class GpuSettings(NotYet):
    operator: bool = False
    switch: ClassVar[str] = "operator"
    what: ClassVar[str] = "the NVIDIA GPU Operator"
