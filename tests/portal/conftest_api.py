"""Fixtures for the portal's web application (load with ``pytest_plugins = ["conftest_api"]`` in a test
module; the shared conftest.py belongs to the engine). Helpers live in portal_api_support.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest
from portal_api_support import HUB_CONFIG, FakeCluster, Hub, LiveServer, free_port, make_portal


def _clean_environment(monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith(("PORTAL_", "JUPYTERHUB_")):
            monkeypatch.delenv(name)


@pytest.fixture
def cluster():
    fake = FakeCluster()
    yield fake
    fake.close()


@pytest.fixture
def portal(pg_url, cluster, tmp_path, monkeypatch):
    _clean_environment(monkeypatch)
    storage = tmp_path / "jhub_storage"
    storage.mkdir()
    made = make_portal(pg_url, cluster, storage)
    yield made
    for client in made.clients:
        client.close()
    made.engine.dispose()


@pytest.fixture(scope="session")
def hub(tmp_path_factory):
    """A real JupyterHub (the jupyterhub package) on 127.0.0.1; the portal will run on 127.0.0.2 so
    browsers keep separate cookies for the two, as they would for two hosts."""
    if shutil.which("jupyterhub", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("the jupyterhub package is not installed (pip install -r portal/requirements-api-test.txt)")
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not a usable loopback address here")
    directory = tmp_path_factory.mktemp("hub")
    hub_port, portal_port = free_port(), free_port("127.0.0.2")
    made = Hub(url=f"http://127.0.0.1:{hub_port}", api_url=f"http://127.0.0.1:{hub_port}/hub/api",
               secret=secrets.token_hex(32), password=secrets.token_urlsafe(12), portal_host="127.0.0.2",
               portal_port=portal_port, tester=secrets.token_hex(32))
    (directory / "jupyterhub_config.py").write_text(HUB_CONFIG.format(
        public_port=free_port(), hub_port=hub_port, dir=directory, password=made.password, secret=made.secret,
        portal_host=made.portal_host, portal_port=portal_port, tester=made.tester))
    log = open(directory / "hub.log", "wb")
    process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "jupyterhub"), "-f",
                                str(directory / "jupyterhub_config.py")], cwd=directory, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{made.api_url}/", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("JupyterHub did not start:\n" + (directory / "hub.log").read_text()[-3000:])
        time.sleep(0.3)
    yield made
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def hub_portal(hub, pg_url, cluster, tmp_path, monkeypatch):
    """The portal registered with the real hub, served on its registered address."""
    _clean_environment(monkeypatch)
    storage = tmp_path / "jhub_storage"
    storage.mkdir()
    made = make_portal(pg_url, cluster, storage, **hub.portal_settings())
    with LiveServer(made.app, hub.portal_host, hub.portal_port) as live:
        made.url = live.url
        yield made
    made.engine.dispose()
