"""scripts/bundle.py fills the locks on a connected machine; the preflight then accepts the bundle.

`snap` and `docker` cannot run here, so small fakes on PATH stand in for them and record their calls.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from components.bundle.locks import load_lock
from components.bundle.preflight import preflight
from tests.support.program import ROOT

FAKE_SNAP = """#!/bin/sh
# snap download NAME --channel=C --target-directory=DIR
echo "snap $*" >> "$FAKE_LOG"
name=$2; dir=${4#--target-directory=}
printf 'snap %s\\n' "$name" > "$dir/${name}_4242.snap"
printf 'assertion %s\\n' "$name" > "$dir/${name}_4242.assert"
"""
FAKE_DOCKER = """#!/bin/sh
echo "docker $*" >> "$FAKE_LOG"
# save --platform=P -o FILE REF, like Docker 28 (the platform must be named, see bundle.py)
if [ "$1" = save ]; then printf 'image %s\\n' "$5" > "$4"; fi
"""


def _setup(tmp_path: Path) -> tuple[Path, Path, dict]:
    images_dir, charts_dir, bin_dir = tmp_path / "offline-images", tmp_path / "charts", tmp_path / "bin"
    images_dir.mkdir()
    charts_dir.mkdir()
    bin_dir.mkdir()
    shutil.copy(ROOT / "offline-images" / "images.lock", images_dir)
    (charts_dir / "charts.lock").write_text("# charts\nversion: 1\ncharts: []\n")
    for name, text in (("snap", FAKE_SNAP), ("docker", FAKE_DOCKER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_LOG=str(tmp_path / "calls.log"))
    return images_dir, charts_dir, env


def _bundle(images_dir, charts_dir, env, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bundle.py"), "--dir", str(images_dir),
         "--charts-dir", str(charts_dir), *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_bundle_records_checksums_and_the_preflight_accepts_it(tmp_path):
    images_dir, charts_dir, env = _setup(tmp_path)
    done = _bundle(images_dir, charts_dir, env, "--stack", "airgapped")
    assert done.returncode == 0, done.stderr
    lock = yaml.safe_load((images_dir / "images.lock").read_text())
    microk8s = next(s for s in lock["snaps"] if s["name"] == "microk8s")
    assert microk8s["revision"] == 4242 and len(microk8s["sha256"]) == 64
    calico = next(i for i in lock["images"] if i["ref"] == "docker.io/calico/node:v3.28.1")
    assert len(calico["sha256"]) == 64
    cert_manager = next(i for i in lock["images"] if "cert-manager" in i["ref"])
    assert cert_manager["sha256"] is None, "--stack bundles only what that stack needs"
    assert (images_dir / "images.lock").read_text().startswith("# Every snap and image"), "header kept"
    calls = (tmp_path / "calls.log").read_text()
    assert "snap download microk8s --channel=1.32/stable" in calls
    assert "docker pull --platform=linux/amd64 docker.io/calico/node:v3.28.1" in calls
    assert "docker save --platform=linux/amd64 -o" in calls

    from scripts.bundle import stack_settings
    import dataclasses

    settings = stack_settings("airgapped")
    offline = settings.offline.model_copy(update={"dir": str(images_dir), "charts_dir": str(charts_dir)})
    settings = dataclasses.replace(settings, offline=offline)
    preflight(settings, load_lock(images_dir, charts_dir))  # raises if anything is missing

    again = _bundle(images_dir, charts_dir, env, "--stack", "airgapped", "--only-missing")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "calls.log").read_text() == calls, "--only-missing downloads nothing twice"


def test_check_reports_what_is_missing(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bundle.py"), "--check", "--stack", "airgapped"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "offline preflight" in done.stderr and "snap microk8s 1.32/stable" in done.stderr
