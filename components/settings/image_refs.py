"""Container image references: checked, split for Helm values, and spelled out in full for the lock file.

`myorg/pytorch:24.10` is what a person writes; containerd stores it as `docker.io/myorg/pytorch:24.10`,
which is how `offline-images/images.lock` lists it, so both sides compare full references.
"""

from __future__ import annotations

import re

_REF_RE = re.compile(
    r"^(?P<repo>(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)"
    r":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$"
)


def check_image(value: str) -> str:
    """A tagged image reference; an air-gapped site needs the exact tag that was bundled."""
    if "@" in value:
        raise ValueError(f'must be "repository:tag" (digests cannot be bundled by tag), got "{value}"')
    match = _REF_RE.match(value)
    if not match:
        raise ValueError(f'must be an image reference with a tag such as "myorg/pytorch:24.10", got "{value}"')
    if match.group("tag") == "latest":
        raise ValueError(f'must name a fixed tag, not "latest" (nodes would run whatever was imported), got "{value}"')
    return value


def split_image(ref: str) -> tuple[str, str]:
    """`quay.io/x/y:1.0` -> (`quay.io/x/y`, `1.0`); a pinned `h/x/y:1.0@sha256:...` (an image the project
    built, in `jhub:offline.buildRegistry`) -> (`h/x/y`, `1.0@sha256:...`): the chart writes `name:tag`."""
    ref, at, digest = ref.partition("@")
    name, _, tag = ref.rpartition(":")
    return name, tag + at + digest


def full_image(ref: str) -> str:
    """The reference as containerd stores it: registry and `library/` spelled out."""
    first, _, rest = ref.partition("/")
    if not rest:
        return f"docker.io/library/{ref}"
    if "." in first or ":" in first or first == "localhost":
        return ref
    return f"docker.io/{ref}"
