"""`jhub:mpi`: the Kubeflow MPI Operator, and a namespace of their own for every user.

    jhub:mpi:
      enabled: true
      namespacePrefix: jhub-u-          # alice -> namespace jhub-u-alice
      quotaDefaults: {cpu: 16, memoryGiB: 64, gpus: 0, pods: 20}   # when the portal gives no limit
      tokenHours: 168                   # lifetime of the kubeconfig token a server gets at each start
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import Field, field_validator

from .base import StrictModel

# Room for "<prefix><slug>" in a 63-character namespace name: the slug takes at most 40.
_PREFIX_RE = re.compile(r"^[a-z]([-a-z0-9]{0,20}-)$")


class QuotaDefaults(StrictModel):
    """The ResourceQuota of a user's namespace where the portal sets no limit (null: no quota on it)."""

    cpu: Optional[float] = Field(default=16.0, ge=0)
    memory_gib: Optional[float] = Field(default=64.0, ge=0, alias="memoryGiB")
    gpus: Optional[int] = Field(default=0, ge=0)
    pods: Optional[int] = Field(default=20, ge=0)


class MpiSettings(StrictModel):
    enabled: bool = False
    namespace_prefix: str = "jhub-u-"
    quota_defaults: QuotaDefaults = Field(default_factory=QuotaDefaults)
    token_hours: int = Field(default=168, ge=1, le=8760)

    @field_validator("namespace_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX_RE.match(value):
            raise ValueError("must be a lowercase namespace prefix ending in \"-\" (letters, digits, \"-\"; "
                             f'starting with a letter; at most 22 characters), like "jhub-u-", got "{value}"')
        return value
