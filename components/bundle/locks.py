"""The lock files that name every file an air-gapped install needs.

`offline-images/images.lock` lists snaps (with their assertions) and image tarballs; `charts/charts.lock`
lists chart archives and plain manifest files (`manifests:`, e.g. the MPI Operator's YAML). Each entry has a version, the file's path relative to the lock's folder, its sha256
and the features that need it. `scripts/bundle.py` fills file names and checksums on a connected machine.

An image the project builds itself has `build:` instead of a registry: `build: <context folder>` or
`build: {context:, dockerfile:, target:, args: {NAME: value}}`, relative to the repository (`BuildSpec`).

Optional, filled by the bundle (null or absent in older locks): an image's `digest`, the sha256 digest of
its linux/amd64 manifest (what `ctr images ls` shows after the import); a snap's `revision` and `sha3_384`
(url-safe base64, as its snap-revision assertion writes it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
SHA3_384_RE = re.compile(r"^[A-Za-z0-9_-]{64}$")  # 48 bytes, url-safe base64 without padding
# Host scripts take plain file names inside one folder per kind, so paths are `<folder>/<name>`.
_NAME = r"[A-Za-z0-9][A-Za-z0-9._+-]*"
PATH_RULES = {"snaps": re.compile(rf"^snaps/{_NAME}$"), "images": re.compile(rf"^images/{_NAME}$"),
              "charts": re.compile(rf"^{_NAME}$"), "manifests": re.compile(rf"^{_NAME}$")}
BUILD_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
BUILD_ARG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IMAGE_LOCK = "images.lock"
CHART_LOCK = "charts.lock"


class LockError(ValueError):
    """A lock file that cannot be read or is malformed."""


@dataclass(frozen=True)
class BuildSpec:
    """How the project builds an image (the lock's `build:`): one spec for the bundle and for `pulumi up`."""

    context: str  # folder, relative to the repository
    dockerfile: str = "Dockerfile"  # relative to the context
    target: Optional[str] = None  # a stage of a multi-stage definition
    args: tuple[tuple[str, str], ...] = ()  # build args, sorted by name

    @classmethod
    def parse(cls, raw, where: str) -> "BuildSpec":
        spec = {"context": raw} if isinstance(raw, str) else raw
        if not isinstance(spec, dict) or not isinstance(spec.get("context"), str) or not spec["context"]:
            raise LockError(f"{where}: 'build' must be a folder or a mapping with 'context'")
        unknown = sorted(set(spec) - {"context", "dockerfile", "target", "args"})
        if unknown:
            raise LockError(f"{where}: 'build' has unknown keys {unknown} (context, dockerfile, target, args)")
        for key in ("context", "dockerfile"):
            value = str(spec.get(key, "Dockerfile"))
            if value.startswith("/") or ".." in Path(value).parts:
                raise LockError(f"{where}: 'build.{key}' must be a relative path inside the repository, got {value!r}")
        target = spec.get("target")
        if target is not None and not BUILD_NAME_RE.match(str(target)):
            raise LockError(f"{where}: 'build.target' must be a stage name, got {target!r}")
        args = spec.get("args") or {}
        if not isinstance(args, dict) or not all(BUILD_ARG_RE.match(str(k)) for k in args) \
                or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in args.values()):
            raise LockError(f"{where}: 'build.args' must map build-arg names to plain values")
        return cls(context=spec["context"], dockerfile=str(spec.get("dockerfile") or "Dockerfile"),
                   target=None if target is None else str(target),
                   args=tuple(sorted((str(k), str(v)) for k, v in args.items())))

    def describe(self) -> str:
        parts = [self.context] + ([f"target {self.target}"] if self.target else [])
        return ", ".join(parts + [f"{k}={v}" for k, v in self.args])


@dataclass(frozen=True)
class LockedFile:
    kind: str  # snap | assertion | image | chart | manifest
    name: str  # snap name, image reference, chart or manifest name
    version: str
    path: str  # relative to the lock's folder
    sha256: Optional[str]
    features: tuple[str, ...]
    lock: str  # which lock file lists it, for messages
    refs: tuple[str, ...] = ()  # image references a tarball holds
    digest: Optional[str] = None  # image: manifest digest (sha256:...); snap: sha3-384 (assertion form)
    build: Optional[BuildSpec] = None  # image: built by the project, not pulled

    def describe(self) -> str:
        return f"{self.kind} {self.name} {self.version}".strip()


@dataclass(frozen=True)
class Lock:
    snaps: tuple[LockedFile, ...] = ()
    images: tuple[LockedFile, ...] = ()
    charts: tuple[LockedFile, ...] = ()
    channels: dict = field(default_factory=dict)  # snap file path -> channel
    manifests: tuple[LockedFile, ...] = ()  # plain YAML files applied as they are (charts.lock `manifests:`)

    def snap_files_for(self, channel: str) -> list[LockedFile]:
        """Snap and assertion files for the microk8s channel asked for, in the lock's order (snapd, its
        bases, then microk8s: the order they must be installed in)."""
        chosen = [f for f in self.snaps if self.channels.get(f.path) in (None, channel)]
        return sorted(chosen, key=lambda f: f.name == "microk8s")

    def image_for(self, ref: str) -> Optional[LockedFile]:
        return next((f for f in self.images if ref in f.refs), None)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise LockError(f"{path}: lock file is missing") from None
    except yaml.YAMLError as error:
        raise LockError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise LockError(f"{path}: expected a mapping with 'version: 1'")
    return data


def _entry(path: Path, section: str, index: int, raw: dict, required: tuple[str, ...]) -> dict:
    where = f"{path}: {section}[{index}]"
    if not isinstance(raw, dict):
        raise LockError(f"{where}: must be a mapping")
    for key in required:
        if not raw.get(key):
            raise LockError(f"{where}: '{key}' is required")
    for key in ("sha256", "assertionSha256"):
        value = raw.get(key)
        if value is not None and not SHA256_RE.match(str(value)):
            raise LockError(f"{where}: '{key}' must be 64 lowercase hex digits or null")
    checks = (("digest", DIGEST_RE, "'sha256:' and 64 lowercase hex digits"),
              ("sha3_384", SHA3_384_RE, "64 url-safe base64 characters (the snap-revision assertion's snap-sha3-384)"))
    for key, pattern, what in checks:
        value = raw.get(key)
        if value is not None and not pattern.match(str(value)):
            raise LockError(f"{where}: '{key}' must be {what} or null, got {value!r}")
    revision = raw.get("revision")
    if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int) or revision < 1):
        raise LockError(f"{where}: 'revision' must be a positive whole number or null, got {revision!r}")
    for key in ("file", "assertion"):
        if key in raw and not PATH_RULES[section].match(str(raw[key])):
            folder = "" if section in ("charts", "manifests") else f"{section}/"
            raise LockError(f"{where}: '{key}' must be a plain file name under {folder or 'this folder'}, "
                            f"got {raw[key]!r}")
    features = raw.get("features") or []
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise LockError(f"{where}: 'features' must be a list of names")
    return raw


def load_lock(offline_dir: Path, charts_dir: Path) -> Lock:
    images_path, charts_path = offline_dir / IMAGE_LOCK, charts_dir / CHART_LOCK
    images_data, charts_data = _read_yaml(images_path), _read_yaml(charts_path)
    snaps, channels, images, charts = [], {}, [], []
    for i, raw in enumerate(images_data.get("snaps") or []):
        raw = _entry(images_path, "snaps", i, raw, ("name", "channel", "file", "assertion"))
        features = tuple(raw.get("features") or ())
        version = f"{raw['channel']} rev {raw.get('revision') or '?'}"
        for kind, file_key, sum_key in (("snap", "file", "sha256"), ("assertion", "assertion", "assertionSha256")):
            item = LockedFile(kind, raw["name"], version, raw[file_key], raw.get(sum_key), features, IMAGE_LOCK,
                              digest=raw.get("sha3_384") if kind == "snap" else None)
            snaps.append(item)
            if raw["name"] == "microk8s":
                channels[item.path] = raw["channel"]
    for i, raw in enumerate(images_data.get("images") or []):
        raw = _entry(images_path, "images", i, raw, ("ref", "file"))
        refs = tuple([raw["ref"]] + list(raw.get("alsoTagged") or []))
        tag = raw["ref"].rsplit(":", 1)[-1] if ":" in raw["ref"].rsplit("/", 1)[-1] else "latest"
        build = None if raw.get("build") is None else BuildSpec.parse(raw["build"], f"{images_path}: images[{i}]")
        images.append(
            LockedFile("image", raw["ref"], tag, raw["file"], raw.get("sha256"),
                       tuple(raw.get("features") or ()), IMAGE_LOCK, refs, raw.get("digest"), build)
        )
    for i, raw in enumerate(charts_data.get("charts") or []):
        raw = _entry(charts_path, "charts", i, raw, ("name", "version", "file"))
        charts.append(
            LockedFile("chart", raw["name"], str(raw["version"]), raw["file"], raw.get("sha256"),
                       tuple(raw.get("features") or ()), CHART_LOCK)
        )
    manifests = []
    for i, raw in enumerate(charts_data.get("manifests") or []):
        raw = _entry(charts_path, "manifests", i, raw, ("name", "version", "file", "url"))
        manifests.append(
            LockedFile("manifest", raw["name"], str(raw["version"]), raw["file"], raw.get("sha256"),
                       tuple(raw.get("features") or ()), CHART_LOCK)
        )
    return Lock(tuple(snaps), tuple(images), tuple(charts), channels, tuple(manifests))
