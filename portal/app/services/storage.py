"""Per-user storage directories under the configured base path, and their safe removal.

Only direct child directories of the base are ever listed or removed: a name is one path component,
symlinks are never followed (the removal walks by file descriptor from the base, like
``shutil.rmtree(dir_fd=...)`` does, and refuses a symlink or a mount point as the target).
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from portal.app.services.errors import DomainError

CEPH_RBYTES = "ceph.dir.rbytes"  # CephFS keeps each directory's recursive size ...
CEPH_RCTIME = "ceph.dir.rctime"  # ... and its newest change: no walk needed


class StorageError(DomainError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason, status=status)


@dataclass(frozen=True)
class DirectoryFacts:
    name: str
    size_bytes: int | None  # None when unknown (too many entries to walk)
    size_source: str | None  # "ceph" | "walk" | None
    owner_uid: int
    modified_at: datetime  # the newest change found in the tree (the top directory's own mtime at least)
    activity_known: bool  # True when every entry was seen (or CephFS gave the recursive change time)
    entries_walked: int = 0


def valid_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name and len(name) <= 255


def _ceph(path: Path, attribute: str) -> str | None:
    try:
        return os.getxattr(path, attribute, follow_symlinks=False).decode().strip("\0 ")
    except (OSError, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class _Measure:
    size: int | None
    source: str | None
    newest: float  # POSIX seconds
    complete: bool
    walked: int


def _measure(path: Path, top: os.stat_result, limit: int) -> _Measure:
    """Size and newest modification of a tree: from CephFS's recursive attributes when it has them, else by
    walking at most ``limit`` entries (never following links). An unfinished walk knows neither for sure."""
    rbytes, rctime = _ceph(path, CEPH_RBYTES), _ceph(path, CEPH_RCTIME)
    if rbytes is not None and rctime is not None:
        try:
            return _Measure(int(rbytes), "ceph", max(top.st_mtime, float(rctime)), True, 0)
        except ValueError:
            pass
    total, seen, newest, stack = 0, 0, top.st_mtime, [str(path)]
    try:
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > limit:
                        return _Measure(None, None, newest, False, limit)
                    info = entry.stat(follow_symlinks=False)
                    total += info.st_size
                    newest = max(newest, info.st_mtime)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
    except OSError:
        return _Measure(None, None, newest, False, seen)
    return _Measure(total, "walk", newest, True, seen)


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


def child_directories(base: Path) -> list[tuple[str, os.stat_result]]:
    """The direct child directories of ``base`` (symlinks and files are skipped), sorted by name."""
    return [(entry.name, entry.stat(follow_symlinks=False)) for entry in _entries(base)
            if entry.is_dir(follow_symlinks=False)]


def scan(base: Path, *, walk_limit: int) -> list[DirectoryFacts]:
    """Facts about each direct child directory of ``base``."""
    return [measure(base, name, info, walk_limit=walk_limit) for name, info in child_directories(base)]


def directory_stat(base: Path, name: str) -> os.stat_result | None:
    """The stat of ``base/name`` when it is a directory (not a link to one); else None."""
    if not valid_name(name):
        return None
    try:
        info = os.stat(base / name, follow_symlinks=False)
    except OSError:
        return None
    return info if stat.S_ISDIR(info.st_mode) else None


def facts_of(base: Path, name: str, *, walk_limit: int) -> DirectoryFacts | None:
    """Facts about one direct child directory of ``base``; None if there is no such directory."""
    info = directory_stat(base, name)
    return None if info is None else measure(base, name, info, walk_limit=walk_limit)


def measure(base: Path, name: str, info: os.stat_result, *, walk_limit: int) -> DirectoryFacts:
    found = _measure(base / name, info, walk_limit)
    return DirectoryFacts(name, found.size, found.source, info.st_uid, datetime.fromtimestamp(found.newest, UTC),
                          found.complete, found.walked)


def unmeasured(name: str, info: os.stat_result) -> DirectoryFacts:
    """A directory not walked (this request's walk budget is spent): only its own mtime is known."""
    return DirectoryFacts(name, None, None, info.st_uid, datetime.fromtimestamp(info.st_mtime, UTC), False, 0)


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
