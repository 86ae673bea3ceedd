"""The directory names KubeSpawner gives a user (``{username}`` in a storage ``subPath`` or hostPath).

KubeSpawner 7 (chart 4.4.0) defaults to ``slug_scheme = "safe"``: a name that already is a valid DNS label
(and has no ``--``) is used as it is; any other name becomes a lower-case, hyphenated prefix, ``---`` and
the first 8 hex digits of its SHA-256 (``Alice.B`` -> ``alice-b---3a7a7327``), 48 characters at most.
Older deployments used the ``escape`` scheme (``Alice.B`` -> ``-41lice-2e-42``); it is kept as a fallback.
The portal does not depend on KubeSpawner; tests compare these functions with the real package.
"""

from __future__ import annotations

import hashlib
import re
import string

USERNAME_MAX_LENGTH = 48  # what KubeSpawner passes for {username}
_HASH_LENGTH = 8
_LOWER = frozenset(string.ascii_lowercase)
_LOWER_DIGITS = frozenset(string.ascii_lowercase + string.digits)
_DNS_LABEL = re.compile(r"^[a-z0-9-]+$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _valid_label(name: str) -> bool:
    """A DNS label as KubeSpawner checks it: 1-63 of [a-z0-9-], starting with a letter, not ending in '-'."""
    return (0 < len(name) <= 63 and name[0] in _LOWER and name[-1] in _LOWER_DIGITS
            and _DNS_LABEL.match(name) is not None)


def _readable_part(name: str, length: int) -> str:
    part = _NOT_ALNUM.sub("-", name.lower()).lstrip("-")[:length].rstrip("-")
    if part and part[0] not in _LOWER:
        part = "x-" + part[:length - 2]
    return part or "x"


def safe_slug(name: str, max_length: int = USERNAME_MAX_LENGTH) -> str:
    """KubeSpawner's ``safe`` slug of ``name`` (its ``{username}`` for the default server)."""
    if "--" not in name and _valid_label(name) and len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode("utf8")).hexdigest()[:_HASH_LENGTH]
    return f"{_readable_part(name, max_length - _HASH_LENGTH - 3)}---{digest}"


def escape_slug(name: str) -> str:
    """KubeSpawner's legacy ``escape`` slug: every byte outside [a-z0-9] as -XX, then lower-cased."""
    out = []
    for char in name:
        out.append(char if char in _LOWER_DIGITS else "".join(f"-{byte:02X}" for byte in char.encode()))
    return "".join(out).lower()


def directory_names(user: str) -> list[str]:
    """The directory names ``user`` may have, the current scheme's first."""
    names = [safe_slug(user)]
    legacy = escape_slug(user)
    if legacy not in names:
        names.append(legacy)
    return names
