"""What the portal needs from the offline bundle: PostgreSQL (unless an external database is configured)
and the portal image, built from portal/Dockerfile by `scripts/bundle.py` (images.lock `build:` entry)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..settings import Settings
from . import images as im

FEATURE = "portal"
PORTAL_DIR = Path(__file__).resolve().parents[2] / "portal"
_SKIP = {"__pycache__", ".pytest_cache"}


def bundle_tags(settings: Settings) -> set[str]:
    return {FEATURE}


def images(settings: Settings) -> list[tuple[str, str]]:
    found = [("jhub:portal (built from portal/Dockerfile)", im.PORTAL_IMAGE)]
    if settings.portal.database_url is None:
        found.append(("jhub:portal.database (in-cluster PostgreSQL)", im.POSTGRES_IMAGE))
    return found


def source_digest(root: Path = PORTAL_DIR) -> str:
    """SHA-256 over portal/ (paths and contents, sorted): what the image is built from. It changes exactly
    when a rebuild would, so pods roll to a rebuilt image even though its tag stays."""
    sha = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not _SKIP & set(p.parts)
                       and p.suffix not in (".pyc", ".db")):
        sha.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()
