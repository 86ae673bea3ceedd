#!/usr/bin/env python3
"""Build the offline bundle on a connected machine, or check one.

    python scripts/bundle.py [--stack airgapped] [--only-missing]   # download, then record sha256s
    python scripts/bundle.py --check [--stack airgapped]            # what an air-gapped `pulumi up` lacks

For every lock entry the stack needs (all entries without --stack) it downloads the file into
offline-images/ or charts/ and writes the file's sha256 (and a snap's revision) back into the lock:
snaps with `snap download`, images with `docker pull` + `docker save` (or `skopeo copy` when docker is
absent), charts over HTTPS from the entry's `url`. Copy offline-images/ and charts/ to the admin machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.bundle.locks import CHART_LOCK, IMAGE_LOCK, load_lock  # noqa: E402


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(*argv: str) -> None:
    print("+ " + " ".join(argv), flush=True)
    subprocess.run(argv, check=True)


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
    from components.bundle.needs import needed_charts, needed_images, needed_snaps

    settings = stack_settings(stack)
    lock = load_lock(images_dir, charts_dir)
    items = needed_snaps(settings, lock) + needed_images(settings, lock) + needed_charts(settings, lock)
    return {item.path for item in items}


def fetch_snap(entry: dict, images_dir: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run("snap", "download", entry["name"], f"--channel={entry['channel']}", f"--target-directory={tmp}")
        snap = next(Path(tmp).glob("*.snap"))
        assertion = next(Path(tmp).glob("*.assert"))
        entry["revision"] = int(snap.stem.rsplit("_", 1)[-1])
        for source, key in ((snap, "file"), (assertion, "assertion")):
            target = images_dir / entry[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), target)


# The nodes' platform: jhub's GPU servers are x86-64 (hosts/images.sh imports the same platform).
IMAGE_PLATFORM = "linux/amd64"


def fetch_image(entry: dict, images_dir: Path) -> None:
    target = images_dir / entry["file"]
    target.parent.mkdir(parents=True, exist_ok=True)
    ref = entry["ref"]
    # One platform, named on every call: under Docker's containerd image store a plain `save` writes an
    # index naming every platform with one platform's blobs, which `ctr images import` then refuses.
    if shutil.which("docker"):
        run("docker", "pull", f"--platform={IMAGE_PLATFORM}", ref)
        run("docker", "save", f"--platform={IMAGE_PLATFORM}", "-o", str(target), ref)
    elif shutil.which("skopeo"):
        os_name, arch = IMAGE_PLATFORM.split("/")
        run("skopeo", f"--override-os={os_name}", f"--override-arch={arch}", "copy", f"docker://{ref}",
            f"docker-archive:{target}:{ref}")
    else:
        raise SystemExit("bundle: images need docker or skopeo on this machine")


def fetch_chart(entry: dict, charts_dir: Path) -> None:
    url = entry.get("url")
    if not url:
        raise SystemExit(f"bundle: {CHART_LOCK} entry {entry['name']} has no url")
    target = charts_dir / entry["file"]
    print(f"+ GET {url}", flush=True)
    with urllib.request.urlopen(url, timeout=120) as response, open(target, "wb") as out:
        shutil.copyfileobj(response, out)


def build(images_dir: Path, charts_dir: Path, wanted: set[str] | None, only_missing: bool) -> None:
    images_lock, charts_lock = images_dir / IMAGE_LOCK, charts_dir / CHART_LOCK
    images, charts = yaml.safe_load(images_lock.read_text()), yaml.safe_load(charts_lock.read_text())
    chosen = lambda path: wanted is None or path in wanted  # noqa: E731
    for entry in images.get("snaps") or []:
        if chosen(entry["file"]) and not (only_missing and _present(images_dir, entry, "file", "sha256")):
            fetch_snap(entry, images_dir)
            entry["sha256"] = sha256(images_dir / entry["file"])
            entry["assertionSha256"] = sha256(images_dir / entry["assertion"])
    for entry in images.get("images") or []:
        if chosen(entry["file"]) and not (only_missing and _present(images_dir, entry, "file", "sha256")):
            fetch_image(entry, images_dir)
            entry["sha256"] = sha256(images_dir / entry["file"])
    for entry in charts.get("charts") or []:
        if chosen(entry["file"]) and not (only_missing and _present(charts_dir, entry, "file", "sha256")):
            fetch_chart(entry, charts_dir)
            entry["sha256"] = sha256(charts_dir / entry["file"])
    _write_lock(images_lock, images)
    _write_lock(charts_lock, charts)


def _present(base: Path, entry: dict, file_key: str, sum_key: str) -> bool:
    path = base / entry[file_key]
    return bool(entry.get(sum_key)) and path.is_file() and sha256(path) == entry[sum_key]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", help="bundle only what Pulumi.<stack>.yaml needs")
    parser.add_argument("--check", action="store_true", help="only report what is missing or wrong")
    parser.add_argument("--only-missing", action="store_true", help="skip files already bundled")
    parser.add_argument("--dir", default=str(ROOT / "offline-images"))
    parser.add_argument("--charts-dir", default=str(ROOT / "charts"))
    args = parser.parse_args(argv)
    images_dir, charts_dir = Path(args.dir), Path(args.charts_dir)
    if args.check:
        from components.bundle.preflight import PreflightError, preflight

        settings = stack_settings(args.stack or "airgapped")
        try:
            preflight(settings, load_lock(images_dir, charts_dir))
        except PreflightError as error:
            print(error, file=sys.stderr)
            return 1
        print("bundle: complete for stack", args.stack or "airgapped")
        return 0
    build(images_dir, charts_dir, wanted_paths(args.stack, images_dir, charts_dir), args.only_missing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
