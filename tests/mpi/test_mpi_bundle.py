"""scripts/bundle.py fetches a `manifests:` entry like a chart (over HTTP from its url, here a loopback server
serving the real v0.8.0 manifest) and records its sha256; the preflight then accepts it."""

from __future__ import annotations

import dataclasses
import hashlib
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import yaml

from components.bundle.locks import load_lock
from components.bundle.needs import needed_manifests
from components.bundle.preflight import preflight
from tests.mpi.test_mpi_program import manifest_text
from tests.offline.test_bundle import _bundle, _setup


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_bundle_fetches_the_manifest_and_the_preflight_accepts_it(tmp_path):
    text = manifest_text()
    served = tmp_path / "served"
    served.mkdir()
    (served / "mpi-operator.yaml").write_text(text)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        images_dir, charts_dir, env = _setup(tmp_path)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/mpi-operator.yaml"
        (charts_dir / "charts.lock").write_text(
            "# charts\nversion: 1\ncharts: []\nmanifests:\n"
            f"  - {{name: mpi-operator, version: v0.8.0, file: mpi-operator-v0.8.0.yaml, sha256: null, url: '{url}', "
            "features: [mpi-operator]}\n")
        done = _bundle(images_dir, charts_dir, env)
        assert done.returncode == 0, done.stderr
    finally:
        httpd.shutdown()
        httpd.server_close()
    [entry] = yaml.safe_load((charts_dir / "charts.lock").read_text())["manifests"]
    assert entry["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert (charts_dir / "mpi-operator-v0.8.0.yaml").read_text() == text

    from scripts.bundle import stack_settings

    settings = stack_settings("airgapped")
    settings = dataclasses.replace(
        settings, mpi=settings.mpi.model_copy(update={"enabled": True}),
        offline=settings.offline.model_copy(update={"dir": str(images_dir), "charts_dir": str(charts_dir)}))
    lock = load_lock(images_dir, charts_dir)
    assert [m.name for m in needed_manifests(settings, lock)] == ["mpi-operator"]
    preflight(settings, lock)  # raises if anything is missing, the manifest or the operator's image included
