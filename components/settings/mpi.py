"""`jhub:mpi`: the Kubeflow MPI Operator."""

from __future__ import annotations

from typing import ClassVar

from .not_yet import NotYet


class MpiSettings(NotYet):
    enabled: bool = False
    what: ClassVar[str] = "the MPI Operator"
