"""scripts/bundle.py fetches a `manifests:` entry like a chart (over HTTP from its url, here a loopback server
serving the real v0.8.0 manifest), records its sha256 and holds it to it; the preflight then finds it."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from components.bundle.locks import load_lock
from components.bundle.needs import needed_manifests
from components.bundle.preflight import PreflightError, preflight
from tests.mpi.test_mpi_program import manifest_text
from tests.support.program import ROOT

FILE = "mpi-operator-v0.8.0.yaml"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    text = manifest_text()
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "mpi-operator.yaml").write_text(text)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/mpi-operator.yaml", text
    httpd.shutdown()
    httpd.server_close()


def manifest_problems(settings, images_dir, charts_dir) -> list[str]:
    try:
        preflight(settings, load_lock(images_dir, charts_dir))
    except PreflightError as error:
        return [p for p in error.problems if p.startswith("manifest mpi-operator")]
    return []


def test_bundle_fetches_the_manifest_and_the_preflight_then_finds_it(tmp_path, served):
    from scripts.bundle import build, stack_settings

    url, text = served
    images_dir, charts_dir = tmp_path / "offline-images", tmp_path / "charts"
    images_dir.mkdir()
    charts_dir.mkdir()
    shutil.copy(ROOT / "offline-images" / "images.lock", images_dir)
    (charts_dir / "charts.lock").write_text(
        "# charts\nversion: 1\ncharts: []\nmanifests:\n"
        f"  - {{name: mpi-operator, version: v0.8.0, file: {FILE}, sha256: null, url: '{url}', "
        "features: [mpi-operator]}\n")
    settings = stack_settings("airgapped")
    settings = dataclasses.replace(
        settings, mpi=settings.mpi.model_copy(update={"enabled": True}),
        offline=settings.offline.model_copy(update={"dir": str(images_dir), "charts_dir": str(charts_dir)}))
    assert [m.name for m in needed_manifests(settings, load_lock(images_dir, charts_dir))] == ["mpi-operator"]
    assert manifest_problems(settings, images_dir, charts_dir)  # not bundled yet: named

    assert build(images_dir, charts_dir, {FILE}) == []  # only the manifest: no registry is asked for images
    [entry] = yaml.safe_load((charts_dir / "charts.lock").read_text())["manifests"]
    assert entry["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert (charts_dir / FILE).read_text() == text
    assert manifest_problems(settings, images_dir, charts_dir) == []

    (charts_dir / FILE).write_text(text + "# tampered\n")
    assert any("has sha256" in p for p in manifest_problems(settings, images_dir, charts_dir))
