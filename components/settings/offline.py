"""`jhub:offline`: where images, charts and snaps come from."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from .base import StrictModel

URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s]*)?$")
UPSTREAM_RE = re.compile(r"^[a-z0-9.-]+(:\d{1,5})?$")
DEFAULT_UPSTREAMS = ("docker.io", "gcr.io", "ghcr.io", "nvcr.io", "quay.io", "registry.k8s.io")


class OfflineSettings(StrictModel):
    """`air-gapped` (the default for real sites): every file comes from the bundle on the admin machine.
    `online`: a connected machine pulls snaps, charts and images itself, so a first try needs no bundle.
    `registryMirror` points containerd at the site's own registry (e.g. Harbor); image tarballs are then
    not needed."""

    mode: Literal["air-gapped", "online"] = "air-gapped"
    dir: str = Field(default="offline-images", min_length=1)
    charts_dir: str = Field(default="charts", min_length=1)
    registry_mirror: Optional[str] = None
    registry_ca_file: Optional[str] = None
    registry_upstreams: dict[str, str] = Field(default_factory=dict)

    @field_validator("registry_mirror")
    @classmethod
    def _mirror(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not URL_RE.match(value):
            raise ValueError(f'must be an http(s) URL such as "https://harbor.local", got "{value}"')
        return None if value is None else value.rstrip("/")

    @field_validator("registry_upstreams")
    @classmethod
    def _upstreams(cls, upstreams: dict[str, str]) -> dict[str, str]:
        for upstream, path in upstreams.items():
            if not UPSTREAM_RE.match(upstream):
                raise ValueError(f'"{upstream}" is not a registry host name such as "docker.io"')
            if path and not path.startswith("/"):
                raise ValueError(f'path for "{upstream}" must start with "/", got "{path}"')
        return dict(sorted(upstreams.items()))

    @model_validator(mode="after")
    def _mirror_options_need_a_mirror(self) -> "OfflineSettings":
        if self.registry_mirror is None and (self.registry_ca_file or self.registry_upstreams):
            raise ValueError('"registryCaFile" and "registryUpstreams" only apply with "registryMirror"; '
                             "set the mirror or remove them")
        return self

    @property
    def air_gapped(self) -> bool:
        return self.mode == "air-gapped"

    @property
    def uses_mirror(self) -> bool:
        return self.registry_mirror is not None

    def mirror_lines(self) -> list[str]:
        """`upstream [path]` lines for hosts/registry.sh; every well-known upstream unless listed."""
        upstreams = self.registry_upstreams or {u: "" for u in DEFAULT_UPSTREAMS}
        return [f"{u} {p}".strip() for u, p in sorted(upstreams.items())]
