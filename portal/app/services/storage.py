"""Per-user storage directories under the configured base path, and their safe removal.

Only direct child directories of the base are ever listed or removed: a name is one path component,
symlinks are never followed (the removal walks by file descriptor from the base, like
``shutil.rmtree(dir_fd=...)`` does, and refuses a symlink or a mount point as the target).
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

CEPH_RBYTES = "ceph.dir.rbytes"  # CephFS keeps each directory's recursive size: no walk needed


class StorageError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class DirectoryFacts:
    name: str
    size_bytes: int | None  # None when unknown (too many entries to walk)
    size_source: str | None  # "ceph" | "walk" | None
    owner_uid: int
    modified_at: datetime


def valid_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name and len(name) <= 255


def _size(path: Path, limit: int) -> tuple[int | None, str | None]:
    try:
        return int(os.getxattr(path, CEPH_RBYTES, follow_symlinks=False)), "ceph"
    except (OSError, ValueError):
        pass
    total, seen, stack = 0, 0, [str(path)]
    try:
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > limit:
                        return None, None
                    info = entry.stat(follow_symlinks=False)
                    total += info.st_size
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
    except OSError:
        return None, None
    return total, "walk"


def _entries(base: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(base) as entries:
            return sorted(entries, key=lambda e: e.name)
    except FileNotFoundError:
        raise StorageError(503, f"the storage base {str(base)!r} does not exist (is it mounted?)") from None
    except OSError as exc:
        raise StorageError(503, f"cannot read the storage base {str(base)!r}: {exc.strerror}") from None


def check_base(base: Path) -> None:
    """Raise StorageError (503) when the base is missing or unreadable."""
    _entries(base)


def scan(base: Path, *, walk_limit: int) -> list[DirectoryFacts]:
    """Facts about each direct child directory of ``base`` (symlinks and files are skipped)."""
    facts = []
    entries = _entries(base)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            facts.append(_facts(Path(entry.path), entry.stat(follow_symlinks=False), walk_limit))
    return facts


def facts_of(base: Path, name: str, *, walk_limit: int) -> DirectoryFacts | None:
    """Facts about one direct child directory of ``base``; None if there is no such directory."""
    if not valid_name(name):
        return None
    path = base / name
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return _facts(path, info, walk_limit) if stat.S_ISDIR(info.st_mode) else None


def _facts(path: Path, info: os.stat_result, walk_limit: int) -> DirectoryFacts:
    size, source = _size(path, walk_limit)
    return DirectoryFacts(path.name, size, source, info.st_uid, datetime.fromtimestamp(info.st_mtime, UTC))


def remove_directory(base: Path, name: str) -> None:
    """Remove ``base/name`` and everything in it, never leaving ``base`` and never following links."""
    if not valid_name(name):
        raise StorageError(422, f"{name!r} is not a directory name")
    base_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        base_info = os.fstat(base_fd)
        try:
            info = os.stat(name, dir_fd=base_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise StorageError(404, f"no storage directory {name!r}") from None
        if stat.S_ISLNK(info.st_mode):
            raise StorageError(409, f"{name!r} is a symbolic link; the portal does not remove links")
        if not stat.S_ISDIR(info.st_mode):
            raise StorageError(409, f"{name!r} is not a directory")
        if info.st_dev != base_info.st_dev:
            raise StorageError(409, f"{name!r} is a mount point; the portal does not remove mounts")
        shutil.rmtree(name, dir_fd=base_fd)  # the fd-based walk: symlinks inside are unlinked, not followed
    finally:
        os.close(base_fd)


def as_json(facts: DirectoryFacts) -> dict:
    data = asdict(facts)
    data["modified_at"] = facts.modified_at.isoformat()
    return data
