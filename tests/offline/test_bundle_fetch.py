"""Resumable, verified downloads (scripts/bundler/fetch.py) against a real HTTP server on 127.0.0.1, and the
progress lines large downloads print."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from scripts.bundler import BundleError
from scripts.bundler.fetch import Expected, download, part_path, request
from scripts.bundler.progress import Progress


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """Python's file server: it ignores Range headers, as some proxies do."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _open(url):
    return lambda offset: request(url, headers={"Range": f"bytes={offset}-"} if offset else {})


def test_a_server_that_ignores_range_makes_the_download_start_over(served, tmp_path):
    root, base = served
    data = os.urandom(200_000)
    (root / "file.bin").write_bytes(data)
    target = tmp_path / "out/file.bin"
    target.parent.mkdir()
    part_path(target).write_bytes(b"x" * 50_000)  # not a prefix of the file: kept bytes are not trusted blindly
    expected = Expected("sha256", hashlib.sha256(data).hexdigest(), len(data))
    assert download(_open(f"{base}/file.bin"), target, expected, "file") is True
    assert target.read_bytes() == data and not part_path(target).exists()
    assert download(_open(f"{base}/file.bin"), target, expected, "file") is False, "intact: nothing fetched"


def test_a_missing_file_is_an_error_naming_the_status(served, tmp_path):
    _, base = served
    with pytest.raises(BundleError, match="HTTP 404"):
        download(_open(f"{base}/nothing"), tmp_path / "x", Expected("sha256", "0" * 64, 10), "x")


def test_an_unreachable_server_is_named(tmp_path):
    with pytest.raises(BundleError, match="cannot reach http://127.0.0.1:9/x"):
        download(_open("http://127.0.0.1:9/x"), tmp_path / "x", Expected("sha256", "0" * 64, 10), "x")


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_prints_bytes_of_total_every_few_seconds_for_large_files():
    out, clock = io.StringIO(), _Clock()
    meter = Progress("image x", 3 << 30, stream=out, interval=5, clock=clock)
    meter.start(1 << 30)
    clock.now = 2
    meter.update(1 << 20)  # too soon for a line
    clock.now = 6
    meter.update((1 << 29) - (1 << 20))
    meter.finish()
    assert out.getvalue().splitlines() == ["image x: 1.0 GiB / 3.0 GiB (33%)", "image x: 1.5 GiB / 3.0 GiB (50%)",
                                           "image x: 1.5 GiB / 3.0 GiB (50%)"]
    small = io.StringIO()
    meter = Progress("config", 2000, stream=small, clock=clock)
    meter.start()
    meter.update(2000)
    meter.finish()
    assert small.getvalue() == "", "small files print nothing"


def test_a_chart_is_recorded_then_held_to_its_recorded_sha256(served, tmp_path):
    from scripts.bundle import fetch_chart

    root, base = served
    (root / "hub-4.4.0.tgz").write_bytes(b"chart v1")
    entry = {"name": "jupyterhub", "version": "4.4.0", "file": "hub-4.4.0.tgz", "sha256": None,
             "url": f"{base}/hub-4.4.0.tgz"}
    fetch_chart(entry, tmp_path)
    assert entry["sha256"] == hashlib.sha256(b"chart v1").hexdigest()
    (tmp_path / "hub-4.4.0.tgz").unlink()
    (root / "hub-4.4.0.tgz").write_bytes(b"chart v1, republished")
    with pytest.raises(BundleError, match="sha256 of the download is"):
        fetch_chart(entry, tmp_path)
    assert entry["sha256"] == hashlib.sha256(b"chart v1").hexdigest() and not (tmp_path / "hub-4.4.0.tgz").exists()
    fetch_chart(entry, tmp_path, refresh=True)
    assert entry["sha256"] == hashlib.sha256(b"chart v1, republished").hexdigest()
