"""`jhub:offline`: where images, charts and snaps come from."""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from .base import Secret, StrictModel

URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[^\s]*)?$")
UPSTREAM_RE = re.compile(r"^[a-z0-9.-]+(:\d{1,5})?$")
# host[:port]/path of a registry project, as an image reference starts: harbor.local/jhub, 10.0.0.5:5000/jhub
BUILD_REGISTRY_RE = re.compile(r"^(?P<host>[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?)"
                               r"(/[a-z0-9]+([._-]+[a-z0-9]+)*)+$")
DEFAULT_UPSTREAMS = ("docker.io", "gcr.io", "ghcr.io", "nvcr.io", "quay.io", "registry.k8s.io")


class OfflineSettings(StrictModel):
    """`air-gapped` (the default for real sites): every file comes from the bundle on the admin machine.
    `online`: a connected machine pulls snaps, charts and images itself, so a first try needs no bundle.
    `registryMirror` points containerd at the site's own registry (e.g. Harbor); image tarballs are then
    not needed.
    `buildRegistry` (`harbor.local/jhub`): where `pulumi up` pushes the images the project builds (the
    portal, the notebook images), which pods then pull by digest; nothing is imported on the nodes for them.
    Login (push, and the pods' pulls): `buildRegistryUsername` and the secret `buildRegistryPassword`;
    `registryCaFile` is the CA."""

    mode: Literal["air-gapped", "online"] = "air-gapped"
    dir: str = Field(default="offline-images", min_length=1)
    charts_dir: str = Field(default="charts", min_length=1)
    registry_mirror: Optional[str] = None
    registry_ca_file: Optional[str] = None
    registry_upstreams: dict[str, str] = Field(default_factory=dict)
    build_registry: Optional[str] = None
    build_registry_username: Optional[str] = Field(default=None, min_length=1)
    build_registry_password: Optional[Secret] = None

    @field_validator("build_registry")
    @classmethod
    def _build_registry(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        value = value.rstrip("/")
        if not BUILD_REGISTRY_RE.match(value):
            raise ValueError('must be a registry host and project such as "harbor.local/jhub" (no https://, '
                             f'lower case, no tag), got "{value}"')
        return value

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
        if self.registry_mirror is None and self.registry_upstreams:
            raise ValueError('"registryUpstreams" only applies with "registryMirror"; set the mirror or remove it')
        if self.registry_mirror is None and self.build_registry is None and self.registry_ca_file:
            raise ValueError('"registryCaFile" only applies with "registryMirror" or "buildRegistry"; set one '
                             "of them or remove it")
        if self.build_registry is None and (self.build_registry_username or self.build_registry_password):
            raise ValueError('"buildRegistryUsername" and "buildRegistryPassword" only apply with '
                             '"buildRegistry"; set it or remove them')
        if (self.build_registry_username is None) != (self.build_registry_password is None):
            raise ValueError('"buildRegistryUsername" and "buildRegistryPassword" go together: the push logs in '
                             "with both")
        if self.build_registry is not None and self.air_gapped and self.registry_mirror is None:
            raise ValueError(f'"buildRegistry" ({self.build_registry}) applies in "online" mode or with '
                             '"registryMirror": air-gapped nodes without a mirror import the bundled images')
        return self

    @property
    def air_gapped(self) -> bool:
        return self.mode == "air-gapped"

    @property
    def uses_mirror(self) -> bool:
        return self.registry_mirror is not None

    @property
    def build_registry_host(self) -> Optional[str]:
        return None if self.build_registry is None else self.build_registry.split("/", 1)[0]

    def mirror_lines(self) -> list[str]:
        """`upstream [path]` lines for hosts/registry.sh; every well-known upstream unless listed."""
        upstreams = self.registry_upstreams or {u: "" for u in DEFAULT_UPSTREAMS}
        return [f"{u} {p}".strip() for u, p in sorted(upstreams.items())]
