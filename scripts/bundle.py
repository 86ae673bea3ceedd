#!/usr/bin/env python3
"""Build the offline bundle on a connected machine, or check one.

    python scripts/bundle.py [--stack airgapped] [--refresh] [--mirror HOST[/PREFIX]]  # download, record
    python scripts/bundle.py --check [--stack airgapped]   # what an air-gapped `pulumi up` lacks, what is wrong
    python scripts/bundle.py --build REF   # build one `build:` image into its tarball, print "sha256 digest"
    python scripts/bundle.py --build REF --push HOST/PROJECT   # ... and push it there (online `pulumi up`)
    python scripts/bundle.py --image REF --push HOST/PROJECT   # push the bundled tarball of a `build:` image
    python scripts/bundle.py [--stack S] --push HOST/PROJECT   # bundle, then push every built image bundled

For every lock entry the stack needs (all entries without --stack) it downloads the file into
offline-images/ or charts/ and writes what it verified back into the lock, with Python alone (no snap, no
Docker): snaps and their assertions from the snap store's HTTP API (revision, sha3_384, sha256s), images
from their registries over the OCI distribution API as OCI-layout tarballs of the linux/amd64 image
(manifest digest and the tarball's sha256), images the project builds with buildah/podman/docker buildx
(`build:` entries), charts and plain manifests (charts.lock `manifests:`) over HTTPS from the entry's `url`. An entry already bundled and intact is not
downloaded again; an interrupted download resumes. Entries with a digest or revision are fetched by it;
--refresh resolves tags and channels again. Copy offline-images/ and charts/ to the admin machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.bundle.locks import CHART_LOCK, IMAGE_LOCK, load_lock  # noqa: E402
from components.bundle.preflight import CACHE_NAME, _load_cache, _save_cache, sha256_of  # noqa: E402


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stack_settings(stack: str):
    """The stack's settings without Pulumi: secure values are replaced, they do not matter here."""
    from components.settings import ConfigSource, load_settings

    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    values, secret_keys = {}, set()
    for key, value in (data.get("config") or {}).items():
        value, secret = _unsecure(value)
        values[key] = value if isinstance(value, str) else json.dumps(value)
        if secret:
            secret_keys.add(key)
    return load_settings(ConfigSource(values, secret_keys), stack=stack, project_dir=ROOT, check_files=False,
                         secrets_known=False)


def _unsecure(value):
    if isinstance(value, dict) and set(value) == {"secure"}:
        return "(secret)", True
    if isinstance(value, dict):
        pairs = {k: _unsecure(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        pairs = [_unsecure(v) for v in value]
        return [v for v, _ in pairs], any(s for _, s in pairs)
    return value, False


def wanted_paths(stack: str | None, images_dir: Path, charts_dir: Path) -> set[str] | None:
    if stack is None:
        return None
    from components.bundle.needs import needed_charts, needed_images, needed_manifests, needed_snaps

    settings = stack_settings(stack)
    lock = load_lock(images_dir, charts_dir)
    items = (needed_snaps(settings, lock) + needed_images(settings, lock) + needed_charts(settings, lock)
             + needed_manifests(settings, lock))
    return {item.path for item in items}


def fetch_snap(entry: dict, images_dir: Path, refresh: bool = False) -> None:
    from scripts.bundler.snapstore import fetch_snap as fetch

    fetch(entry, images_dir, refresh=refresh)


def fetch_image(entry: dict, images_dir: Path, refresh: bool = False, mirror: str | None = None) -> None:
    if entry.get("build"):
        from scripts.bundler.build import build_image

        build_image(entry, images_dir, ROOT)
        return
    from scripts.bundler.images import fetch_image as fetch

    fetch(entry, images_dir, refresh=refresh, mirror=mirror)


def fetch_chart(entry: dict, charts_dir: Path, refresh: bool = False) -> None:
    """A chart archive over HTTPS; with a recorded sha256 it must match it (resumable, like the rest),
    otherwise it is recorded."""
    from scripts.bundler import BundleError
    from scripts.bundler.fetch import Expected, download, request

    url = entry.get("url")
    if not url:
        raise BundleError(f"{CHART_LOCK} entry {entry['name']} has no url")
    target = charts_dir / entry["file"]
    locked = None if refresh else entry.get("sha256")
    print(f"+ GET {url}", file=sys.stderr, flush=True)
    opener = lambda offset: request(url, headers={"Range": f"bytes={offset}-"} if offset else {})  # noqa: E731
    if locked:
        download(opener, target, Expected("sha256", locked, None), f"chart {entry['name']}")
        return
    tmp = target.with_name(target.name + ".tmp")
    with opener(0) as response:
        if response.status != 200:
            raise BundleError(f"chart {entry['name']}: HTTP {response.status} from {url}")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
    os.replace(tmp, target)
    entry["sha256"] = sha256(target)


def build(images_dir: Path, charts_dir: Path, wanted: set[str] | None, *, refresh: bool = False,
          mirror: str | None = None) -> list[str]:
    """Fetch what is missing or wrong; the lock is rewritten after each entry, so an interrupted run keeps
    what it verified. Returns the entries that failed, with their reasons."""
    from scripts.bundler import BundleError

    images_lock, charts_lock = images_dir / IMAGE_LOCK, charts_dir / CHART_LOCK
    images, charts = yaml.safe_load(images_lock.read_text()), yaml.safe_load(charts_lock.read_text())
    cache_path = images_dir / CACHE_NAME
    cache = _load_cache(cache_path)
    intact = lambda base, entry, key="file", sums="sha256": _present(base, entry, key, sums, cache)  # noqa: E731
    steps = [
        (images_lock, images, entry, f"snap {entry['name']} {entry['channel']}",
         lambda e: intact(images_dir, e) and intact(images_dir, e, "assertion", "assertionSha256")
         and bool(e.get("sha3_384") and e.get("revision")),
         lambda e: fetch_snap(e, images_dir, refresh))
        for entry in images.get("snaps") or []
    ] + [
        (images_lock, images, entry, f"image {entry['ref']}",
         lambda e: intact(images_dir, e) and bool(e.get("digest")),
         lambda e: fetch_image(e, images_dir, refresh, mirror))
        for entry in images.get("images") or []
    ] + [
        (charts_lock, charts, entry, f"chart {entry['name']} {entry['version']}",
         lambda e: intact(charts_dir, e), lambda e: fetch_chart(e, charts_dir, refresh))
        for entry in charts.get("charts") or []
    ] + [  # plain manifests (the MPI Operator's YAML): fetched and held to their sha256 like charts
        (charts_lock, charts, entry, f"manifest {entry['name']} {entry['version']}",
         lambda e: intact(charts_dir, e), lambda e: fetch_chart(e, charts_dir, refresh))
        for entry in charts.get("manifests") or []
    ]
    failures = []
    for lock_path, data, entry, label, is_intact, fetch in steps:
        if wanted is not None and entry["file"] not in wanted:
            continue
        if not refresh and is_intact(entry):
            print(f"= {label}: bundled and intact, skipped", file=sys.stderr, flush=True)
            continue
        try:
            fetch(entry)
        except BundleError as error:
            failures.append(f"{label}: {error}")
            continue
        _write_lock(lock_path, data)
    _save_cache(cache_path, cache)
    return failures


def _present(base: Path, entry: dict, file_key: str, sum_key: str, cache: dict) -> bool:
    path = base / entry[file_key]
    return bool(entry.get(sum_key)) and path.is_file() and sha256_of(path, cache) == entry[sum_key]


def _write_lock(path: Path, data: dict) -> None:
    """Rewrite a lock, keeping its leading comment block."""
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(header + [body]))
    os.replace(tmp, path)


def check(images_dir: Path, charts_dir: Path, stack: str | None) -> int:
    """The preflight of `pulumi up` for the stack, then the bundle's own checks; prints every problem."""
    import dataclasses

    from components.bundle.preflight import PreflightError, offline_dirs, preflight
    from scripts.bundler.check import check_bundle

    stack = stack or "airgapped"
    settings = stack_settings(stack)
    if offline_dirs(settings) != (images_dir.resolve(), charts_dir.resolve()):
        offline = settings.offline.model_copy(update={"dir": str(images_dir), "charts_dir": str(charts_dir)})
        settings = dataclasses.replace(settings, offline=offline)
    failed = False
    try:
        preflight(settings, load_lock(images_dir, charts_dir))
    except PreflightError as error:
        print(error, file=sys.stderr)
        failed = True
    images = yaml.safe_load((images_dir / IMAGE_LOCK).read_text())
    problems = check_bundle(images, images_dir, wanted_paths(stack, images_dir, charts_dir))
    if problems:
        print(f"bundle check: {len(problems)} problem{'s' if len(problems) != 1 else ''} the import would hit:",
              file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
    if failed or problems:
        return 1
    print("bundle: complete for stack", stack)
    return 0


def build_one(images_dir: Path, ref: str, push: str | None = None, *, bundled: bool = False) -> int:
    """Build one image the project builds (online `pulumi up`, components/bundle/built.py): the tarball the
    lock names, the lock itself untouched; with `push` (`jhub:offline.buildRegistry`), then push it there
    (scripts/bundler/push.py). `bundled`: build nothing, push the bundle's tarball, held to the lock's sha256
    and digest. stdout is `<tarball sha256> <manifest digest>` and nothing else."""
    from scripts.bundler import BundleError
    from scripts.bundler.build import build_image

    images = yaml.safe_load((images_dir / IMAGE_LOCK).read_text())
    entry = next((e for e in images.get("images") or [] if e.get("build")
                  and ref in [e["ref"]] + list(e.get("alsoTagged") or [])), None)
    if entry is None:
        print(f"bundle: {images_dir / IMAGE_LOCK} has no `build:` entry for {ref}", file=sys.stderr)
        return 1
    entry = dict(entry)
    try:
        if bundled:
            _check_bundled(entry, images_dir)
        else:
            build_image(entry, images_dir, ROOT)
        if push:
            _push(entry, images_dir, push)
    except BundleError as error:
        print(f"bundle: {error}", file=sys.stderr)
        return 1
    print(entry["sha256"], entry["digest"])
    return 0


def _check_bundled(entry: dict, images_dir: Path) -> None:
    from scripts.bundler import BundleError

    tarball = images_dir / entry["file"]
    if not (entry.get("sha256") and entry.get("digest")):
        raise BundleError(f"image {entry['ref']} is not bundled yet: run scripts/bundle.py on a connected machine")
    if not tarball.is_file() or sha256(tarball) != entry["sha256"]:
        raise BundleError(f"image {entry['ref']}: {tarball} is missing or not the lock's sha256 {entry['sha256']}")


def _push(entry: dict, images_dir: Path, registry: str) -> None:
    """Push the entry's tarball as `<registry>/<name>:<tag>`; its digest must stay the one recorded."""
    from scripts.bundler import BundleError
    from scripts.bundler.push import push_archive, target_reference

    target = target_reference(entry["ref"], registry)
    print(f"+ push {entry['ref']} -> {target}", file=sys.stderr, flush=True)
    digest = push_archive(images_dir / entry["file"], entry["ref"], registry)
    if digest != entry["digest"]:
        raise BundleError(f"push of {entry['ref']} to {target}: pushed {digest}, the tarball says {entry['digest']}")
    print(f"= {target}@{digest}", file=sys.stderr, flush=True)


def push_built(images_dir: Path, wanted: set[str] | None, registry: str) -> list[str]:
    """After bundling: push every `build:` image bundled (those the stack needs) to the site's registry."""
    from scripts.bundler import BundleError

    images = yaml.safe_load((images_dir / IMAGE_LOCK).read_text())
    failures = []
    for entry in images.get("images") or []:
        if not entry.get("build") or (wanted is not None and entry["file"] not in wanted):
            continue
        try:
            _check_bundled(entry, images_dir)
            _push(entry, images_dir, registry)
        except BundleError as error:
            failures.append(str(error))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", help="bundle only what Pulumi.<stack>.yaml needs")
    parser.add_argument("--check", action="store_true", help="only report what is missing or wrong")
    parser.add_argument("--refresh", action="store_true",
                        help="resolve tags and channels again and download everything anew")
    parser.add_argument("--only-missing", action="store_true", help=argparse.SUPPRESS)  # now the default
    parser.add_argument("--mirror", metavar="HOST[/PREFIX]",
                        help="fetch images from a registry holding copies as PREFIX/<registry>/<repository>")
    parser.add_argument("--build", metavar="REF", help="only build this `build:` image; the lock is not changed")
    parser.add_argument("--image", metavar="REF", help="with --push: push this bundled `build:` image only")
    parser.add_argument("--push", metavar="HOST/PROJECT",
                        help="push the images the project builds to this registry (jhub:offline.buildRegistry)")
    parser.add_argument("--dir", default=str(ROOT / "offline-images"))
    parser.add_argument("--charts-dir", default=str(ROOT / "charts"))
    args = parser.parse_args(argv)
    images_dir, charts_dir = Path(args.dir), Path(args.charts_dir)
    if args.check:
        return check(images_dir, charts_dir, args.stack)
    if args.push:
        from components.settings.offline import BUILD_REGISTRY_RE

        if not BUILD_REGISTRY_RE.match(args.push.rstrip("/")):
            parser.error(f'--push: must be a registry host and project such as "harbor.local/jhub", got "{args.push}"')
    if args.image:
        if not args.push or args.build:
            parser.error("--image goes with --push, not with --build")
        return build_one(images_dir, args.image, args.push, bundled=True)
    if args.build:
        return build_one(images_dir, args.build, args.push)
    wanted = wanted_paths(args.stack, images_dir, charts_dir)
    failures = build(images_dir, charts_dir, wanted, refresh=args.refresh, mirror=args.mirror)
    if failures:
        print(f"bundle: {len(failures)} entr{'ies' if len(failures) != 1 else 'y'} not bundled "
              "(the lock keeps what was verified; run again to resume):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    if args.push:
        failures = push_built(images_dir, wanted, args.push)
        if failures:
            print(f"bundle: {len(failures)} image{'s' if len(failures) != 1 else ''} not pushed:", file=sys.stderr)
            for failure in failures:
                print(f"  - {failure}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
