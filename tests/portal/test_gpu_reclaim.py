"""Idle-GPU reclaim against a real JupyterHub (the jupyterhub package, with real local single-user
servers): a flagged server is warned, the warning is on /api/me/notices, and after the warning period it
is stopped through the hub API and audited; a server computing on its GPUs is never stopped; reclaim is
off by default."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest
from gpu_test_support import T0, add_session, batch, every, holder, sample
from portal_api_support import HUB_CONFIG, free_port

from portal.gpu.ingest import ingest_batch
from portal.gpu.reclaim import HubServers, reclaim_pass
from portal.gpu.settings import load_gpu_settings

pytest_plugins = ["conftest_api"]

SPAWNER = '''
import sys
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.allow_named_servers = True
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.tests.mocksu"]
c.Spawner.args = []
c.Spawner.start_timeout = 30
c.Spawner.http_timeout = 30
c.SimpleLocalProcessSpawner.home_dir_template = "{dir}/home/{{username}}"
c.JupyterHub.services.append({{"name": "gpu-reclaim", "api_token": {reclaimer!r}}})
c.JupyterHub.load_roles.append({{"name": "gpu-reclaim", "services": ["gpu-reclaim"],
                                 "scopes": ["admin:users", "servers", "read:users"]}})
'''


class RealHub:
    def __init__(self, directory) -> None:
        hub_port = free_port()
        self.api_url = f"http://127.0.0.1:{hub_port}/hub/api"
        self.token = secrets.token_hex(32)
        config = HUB_CONFIG.format(public_port=free_port(), hub_port=hub_port, dir=directory,
                                   password=secrets.token_urlsafe(12), secret=secrets.token_hex(32),
                                   portal_host="127.0.0.2", portal_port=free_port(), tester=secrets.token_hex(32))
        (directory / "jupyterhub_config.py").write_text(config + SPAWNER.format(dir=directory, reclaimer=self.token))
        self.log_path = directory / "hub.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "jupyterhub"), "-f",
                                         str(directory / "jupyterhub_config.py")], cwd=directory, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        self.api = httpx.Client(base_url=self.api_url, headers={"Authorization": f"token {self.token}"}, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.api_url}/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError("JupyterHub did not start:\n" + self.log_path.read_text()[-3000:])
            time.sleep(0.3)

    def start_server(self, user: str, server: str = "") -> None:
        if self.api.get(f"/users/{user}").status_code == 404:
            self.api.post(f"/users/{user}").raise_for_status()
        path = f"/users/{user}/server" + (f"s/{server}" if server else "")
        assert self.api.post(path).status_code in (201, 202), self.log_path.read_text()[-3000:]
        deadline = time.monotonic() + 30
        while not self.running(user, server):
            assert time.monotonic() < deadline, self.log_path.read_text()[-3000:]
            time.sleep(0.2)

    def running(self, user: str, server: str = "") -> bool:
        servers = self.api.get(f"/users/{user}").json().get("servers", {})
        return bool(servers.get(server, {}).get("ready"))

    def close(self) -> None:
        self.api.close()
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


@pytest.fixture(scope="module")
def real_hub(tmp_path_factory):
    if not os.path.exists(os.path.join(os.path.dirname(sys.executable), "jupyterhub")):
        pytest.skip("the jupyterhub package is not installed (pip install -r portal/requirements-api-test.txt)")
    hub = RealHub(tmp_path_factory.mktemp("reclaim-hub"))
    yield hub
    hub.close()


IDLE_END = T0 + timedelta(hours=2, minutes=5)


def _seed(portal, *, user: str, uid: str, util: float, server: str = "") -> None:
    """A running session holding 2 GPUs with samples every minute for 2 h 5 min at ``util`` %."""
    pod = f"jupyter-{user}" + (f"-{server}" if server else "")
    with portal.engine.begin() as conn:
        add_session(conn, uid=uid, user=user, pod=pod, gpus=2, server=server)
    for gpu in (f"GPU-{user}-0", f"GPU-{user}-1"):
        samples = [sample(gpu, at, util=util if gpu.endswith("-0") else 0.0, holders=[holder(pod)])
                   for at in every(T0, IDLE_END, 60)]
        with portal.engine.begin() as conn:
            ingest_batch(conn, batch=batch("gpu01", samples), busy_threshold_percent=5.0, now=IDLE_END)


def _reclaim_settings(**values):
    return load_gpu_settings(**{"reclaim_enabled": True, "reclaim_warning_seconds": 1800,
                                "reclaim_hub_api_url": "http://x", "reclaim_hub_token": "t" * 32, **values})


def test_an_idle_gpu_server_is_warned_then_stopped_through_the_hub_and_audited(portal, real_hub):
    real_hub.start_server("alice", "train")
    real_hub.start_server("bob")  # bob's GPUs compute (one of them at 90 %), whatever his browser does
    _seed(portal, user="alice", uid="uid-alice", util=1.0, server="train")
    _seed(portal, user="bob", uid="uid-bob", util=90.0)
    settings = _reclaim_settings()
    portal.ctx.gpu = settings
    hub = HubServers(api_url=real_hub.api_url, token=real_hub.token)

    now = IDLE_END
    first = reclaim_pass(portal.engine, settings=settings, now=now, hub=hub)
    assert first.flagged == ["uid-alice"] and first.warned == ["uid-alice"] and first.stopped == []
    assert real_hub.running("alice", "train") and real_hub.running("bob")

    portal.now = now + timedelta(minutes=1)
    notices = portal.client("alice").get("/api/me/notices").json()["notices"]
    assert [(n["kind"], n["server_name"], n["gpu_count"], n["idle_since"], n["stop_at"]) for n in notices] == [
        ("idle-gpu", "train", 2, "2026-05-20T00:00:00Z", "2026-05-20T02:35:00Z")]
    assert "10:35 CST" in notices[0]["message"] and "'train'" in notices[0]["message"]  # Asia/Taipei time
    assert portal.client("bob").get("/api/me/notices").json() == {"notices": []}

    # the samples keep coming (still idle); the warning period ends
    later = now + timedelta(minutes=31)
    for gpu in ("GPU-alice-0", "GPU-alice-1", "GPU-bob-1"):
        pod = "jupyter-alice-train" if "alice" in gpu else "jupyter-bob"
        with portal.engine.begin() as conn:
            ingest_batch(conn, batch=batch("gpu01", [sample(gpu, at, util=0.0, holders=[holder(pod)])
                                                     for at in every(now, later, 60)]),
                         busy_threshold_percent=5.0, now=later)
    second = reclaim_pass(portal.engine, settings=settings, now=later, hub=hub)
    assert second.stopped == ["uid-alice"] and second.failed == []
    deadline = time.monotonic() + 20
    while real_hub.running("alice", "train") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not real_hub.running("alice", "train")
    assert real_hub.running("bob")

    entries = portal.audit()
    assert [(e["actor"], e["action"], e["target"]) for e in entries] == [
        ("system:gpu-reclaim", "gpu.reclaim.warn", "alice/train"),
        ("system:gpu-reclaim", "gpu.reclaim.stop", "alice/train")]
    assert entries[1]["detail"]["result"] in ("stopped", "stopping")  # the hub's 204 or 202
    assert entries[1]["detail"]["pod_uid"] == "uid-alice" and entries[1]["detail"]["gpus"] == 2

    # asked once: a later pass does not ask the hub again
    assert reclaim_pass(portal.engine, settings=settings, now=later + timedelta(minutes=5), hub=hub).stopped == []


def test_a_server_that_computes_during_its_warning_is_not_stopped(portal, real_hub):
    real_hub.start_server("carol")
    _seed(portal, user="carol", uid="uid-carol", util=0.0)
    settings = _reclaim_settings()
    hub = HubServers(api_url=real_hub.api_url, token=real_hub.token)
    assert reclaim_pass(portal.engine, settings=settings, now=IDLE_END, hub=hub).warned == ["uid-carol"]
    computed_at = IDLE_END + timedelta(minutes=10)
    with portal.engine.begin() as conn:
        ingest_batch(conn, batch=batch("gpu01", [sample("GPU-carol-1", computed_at, util=55.0,
                                                        holders=[holder("jupyter-carol")])]),
                     busy_threshold_percent=5.0, now=computed_at)
    report = reclaim_pass(portal.engine, settings=settings, now=IDLE_END + timedelta(minutes=31), hub=hub)
    assert report.flagged == [] and report.stopped == [] and report.cleared == 1
    assert real_hub.running("carol")
    assert [e["action"] for e in portal.audit()] == ["gpu.reclaim.warn"]


def _seed_mig(portal, *, user: str, uid: str, active: bool) -> None:
    """A running session holding one A100 MIG slice (no GPM: no utilisation, the agent's active flag)."""
    with portal.engine.begin() as conn:
        add_session(conn, uid=uid, user=user)
    samples = [sample(f"MIG-{user}", at, util=None, parent="GPU-m", holders=[holder(f"jupyter-{user}")],
                      active=active) for at in every(T0, IDLE_END, 60)]
    with portal.engine.begin() as conn:
        ingest_batch(conn, batch=batch("gpu01", samples), busy_threshold_percent=5.0, now=IDLE_END)


def test_a_mig_server_whose_slice_no_process_holds_is_warned_and_one_that_takes_it_again_is_kept(
        portal, real_hub):
    real_hub.start_server("mia")
    real_hub.start_server("max")
    _seed_mig(portal, user="mia", uid="uid-mia", active=False)
    _seed_mig(portal, user="max", uid="uid-max", active=True)  # a process holds his slice: never warned
    settings = _reclaim_settings()
    hub = HubServers(api_url=real_hub.api_url, token=real_hub.token)
    assert reclaim_pass(portal.engine, settings=settings, now=IDLE_END, hub=hub).warned == ["uid-mia"]
    taken_at = IDLE_END + timedelta(minutes=10)  # her kernel computes on the slice again
    with portal.engine.begin() as conn:
        ingest_batch(conn, batch=batch("gpu01", [sample("MIG-mia", taken_at, util=None, parent="GPU-m",
                                                        holders=[holder("jupyter-mia")], active=True)]),
                     busy_threshold_percent=5.0, now=taken_at)
    report = reclaim_pass(portal.engine, settings=settings, now=IDLE_END + timedelta(minutes=31), hub=hub)
    assert report.flagged == [] and report.stopped == []
    assert real_hub.running("mia") and real_hub.running("max")
    assert [(e["action"], e["target"]) for e in portal.audit()] == [("gpu.reclaim.warn", "mia")]


def test_reclaim_is_off_by_default(portal, real_hub, monkeypatch):
    for name in list(os.environ):
        if name.startswith("PORTAL_GPU_"):
            monkeypatch.delenv(name)
    real_hub.start_server("dave")
    _seed(portal, user="dave", uid="uid-dave", util=0.0)
    settings = load_gpu_settings()
    assert settings.reclaim_enabled is False
    hub = HubServers(api_url=real_hub.api_url, token=real_hub.token)
    for minutes in (0, 5, 9):  # the samples stay fresh for 10 minutes
        report = reclaim_pass(portal.engine, settings=settings, now=IDLE_END + timedelta(minutes=minutes), hub=hub)
        assert report.warned == [] and report.stopped == []
    assert report.flagged == ["uid-dave"]
    assert real_hub.running("dave") and portal.audit() == []
    # flagged all the same, for the pages; the notice says no stop is planned
    portal.now = IDLE_END
    notices = portal.client("dave").get("/api/me/notices").json()["notices"]
    assert [(n["kind"], n["stop_at"]) for n in notices] == [("idle-gpu", None)]


def test_with_no_warning_period_a_default_server_is_warned_and_stopped_in_one_pass(portal, real_hub):
    real_hub.start_server("erin")
    _seed(portal, user="erin", uid="uid-erin", util=0.0)
    settings = _reclaim_settings(reclaim_warning_seconds=0)
    hub = HubServers(api_url=real_hub.api_url, token=real_hub.token)
    report = reclaim_pass(portal.engine, settings=settings, now=IDLE_END, hub=hub)
    assert report.warned == ["uid-erin"] and report.stopped == ["uid-erin"]
    deadline = time.monotonic() + 20
    while real_hub.running("erin") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not real_hub.running("erin")
    assert [(e["action"], e["target"]) for e in portal.audit()] == [("gpu.reclaim.warn", "erin"),
                                                                    ("gpu.reclaim.stop", "erin")]
    assert portal.audit()[1]["detail"]["result"] in ("stopped", "stopping")


def test_a_hub_that_refuses_the_stop_is_audited_as_failed(portal, real_hub):
    real_hub.start_server("fred")
    _seed(portal, user="fred", uid="uid-fred", util=0.0)
    settings = _reclaim_settings(reclaim_warning_seconds=0)
    wrong_token = HubServers(api_url=real_hub.api_url, token="not-a-hub-token-" + "0" * 20)
    report = reclaim_pass(portal.engine, settings=settings, now=IDLE_END, hub=wrong_token)
    assert report.stopped == [] and report.failed == ["uid-fred"]
    stop = portal.audit()[-1]
    assert (stop["action"], stop["detail"]["result"]) == ("gpu.reclaim.stop", "failed")
    assert "403" in stop["detail"]["error"] and "not-a-hub-token" not in str(stop["detail"])
    assert real_hub.running("fred")
