"""``python -m portal`` as an operator runs it: settings checked first, then the web app plus the
collector on real PostgreSQL, JSON logs, and a clean stop on SIGTERM."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from portal_api_support import free_port
from portal_test_kube import FakeKubeApi, write_kubeconfig
from portal_test_pods import user_pod

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ops-token-for-main-test-0123456789"


def portal_env(**values: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "JUPYTERHUB_"))}
    env.update({"PYTHONPATH": str(ROOT)}, **values)
    return env


def run(*args: str, env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "portal", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_bad_settings_stop_the_start_with_the_variable_named():
    result = run("check", env=portal_env(PORTAL_TIMEZONE="Mars/Olympus"))
    assert result.returncode == 2 and "PORTAL_TIMEZONE" in result.stderr and "Traceback" not in result.stderr
    result = run(env=portal_env(PORTAL_HUB_API_URL="http://hub:8081/hub/api"))
    assert result.returncode == 2 and "PORTAL_OAUTH_CLIENT_SECRET" in result.stderr
    result = run("check", env=portal_env())
    assert result.returncode == 2 and "nobody can sign in" in result.stderr
    result = run("check", env=portal_env(PORTAL_GPU_MODEL_RATES="{not json"))
    assert result.returncode == 2 and "PORTAL_GPU_MODEL_RATES: not valid JSON" in result.stderr
    result = run("check", env=portal_env(PORTAL_DATABASE_URL="postgres://portal:hunter2@db/portal"))
    assert result.returncode == 2 and "PORTAL_DATABASE_URL" in result.stderr
    assert "postgresql+psycopg://" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_a_mysql_portal_database_is_refused_before_any_table_is_made(mysql_database_url):
    result = run("migrate", env=portal_env(PORTAL_DATABASE_URL=mysql_database_url, PORTAL_SESSION_SECRET="m" * 40,
                                           PORTAL_API_TOKENS=json.dumps({"ops": {"role": "admin",
                                                                                 "sha256": "0" * 64}})))
    assert result.returncode == 2 and "PORTAL_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr
    engine = sa.create_engine(mysql_database_url)
    assert not {"alembic_version", "pod_sessions", "audit_log"} & set(sa.inspect(engine).get_table_names())
    engine.dispose()


def test_hash_token_prints_what_portal_api_tokens_needs():
    result = run("hash-token", "--stdin", env=portal_env(), stdin=TOKEN + "\n")
    assert result.stdout.strip() == hashlib.sha256(TOKEN.encode()).hexdigest()
    fresh = run("hash-token", env=portal_env()).stdout.splitlines()
    token, digest = fresh[0].split()[1], fresh[1].split()[1]
    assert len(token) >= 40 and hashlib.sha256(token.encode()).hexdigest() == digest


@pytest.fixture
def kube(tmp_path):
    api = FakeKubeApi()
    api.lists = [([user_pod("alice", uid="uid-main-alice", started="2026-05-20T02:00:00Z")], "10")]
    write_kubeconfig(api, tmp_path / "kubeconfig")
    yield api
    api.close()


class Running:
    """``python -m portal`` in a subprocess, its log in a file; stopped with SIGTERM."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "portal.log"
        self.log = open(self.log_path, "w+")
        env = portal_env(PORTAL_HOST="127.0.0.1", PORTAL_PORT=str(self.port), PORTAL_SESSION_SECRET="m" * 40,
                         PORTAL_API_TOKENS=json.dumps({"ops": {"role": "admin", "sha256": hashlib.sha256(
                             TOKEN.encode()).hexdigest()}}), **env)
        self.process = subprocess.Popen([sys.executable, "-m", "portal"], cwd=ROOT, env=env, stdout=self.log,
                                        stderr=self.log)

    def wait_ready(self) -> dict:
        deadline, ready = time.monotonic() + 60, None
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=2)
                if ready.status_code == 200:
                    return ready.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the portal did not get ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        return code, time.monotonic() - started

    def close(self) -> list[dict]:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]


def poll(engine: sa.Engine, query: str, seconds: float = 20) -> list:
    deadline = time.monotonic() + seconds
    while True:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(query)).all()
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_serves_collects_and_stops_cleanly_on_sigterm(pg_database_url, kube, tmp_path):
    portal = Running(tmp_path, PORTAL_DATABASE_URL=pg_database_url, PORTAL_KUBE_CONFIG_MODE="kubeconfig",
                     PORTAL_KUBECONFIG=str(kube.kubeconfig), PORTAL_STORAGE_BASE_PATH=str(tmp_path))
    try:
        ready = portal.wait_ready()
        assert (ready["status"], ready["database"], ready["collector"] in ("starting", "ok")) == ("ok", "ok", True)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{portal.url}/api/me", headers=auth).json()["admin"] is True
        assert httpx.get(f"{portal.url}/api/me").status_code == 401
        engine = sa.create_engine(pg_database_url)
        found = poll(engine, "SELECT user_name FROM pod_sessions WHERE pod_uid = 'uid-main-alice'")  # collector
        engine.dispose()
        assert [row[0] for row in found] == ["alice"]
        metrics = httpx.get(f"{portal.url}/metrics").text
        assert "portal_collector_running 1.0" in metrics and "portal_collector_relists_total 1.0" in metrics
        assert httpx.get(f"{portal.url}/readyz").json()["collector"] == "ok"
        deadline = time.monotonic() + 20
        while kube.open_watches < 1 and time.monotonic() < deadline:  # the collector waits in a quiet watch,
            time.sleep(0.1)  # which the API server holds open for its timeoutSeconds (30 s here)
        assert kube.open_watches == 1
        code, took = portal.stop()
        assert code == 0 and took < 8  # the watch was ended at once, not waited out
    finally:
        records = portal.close()
    messages = [r["message"] for r in records]  # every line of the log is one JSON object
    assert "database schema is current" in messages and "portal stopped" in messages
    assert "collector stopped" in messages and not [m for m in messages if "did not stop" in m]
    assert any(r["logger"] == "portal.access" and r["path"] == "/api/me" for r in records)
    assert TOKEN not in portal.log_path.read_text()


def test_exports_to_mysql_when_configured(pg_database_url, mysql_database_url, kube, tmp_path):
    portal = Running(tmp_path, PORTAL_DATABASE_URL=pg_database_url, PORTAL_KUBE_CONFIG_MODE="kubeconfig",
                     PORTAL_KUBECONFIG=str(kube.kubeconfig), PORTAL_MYSQL_URL=mysql_database_url,
                     PORTAL_MYSQL_SYNC_INTERVAL_SECONDS="0.5")
    try:
        portal.wait_ready()
        mysql = sa.create_engine(mysql_database_url)
        rows = poll(mysql, "SELECT user_name, pod_uid FROM pod_report WHERE pod_uid = 'uid-main-alice'")
        mysql.dispose()
        assert [tuple(r) for r in rows] == [("alice", "uid-main-alice")]
        assert portal.stop()[0] == 0
    finally:
        records = portal.close()
    assert "mysql-sync stopped" in [r["message"] for r in records]


def test_a_missing_kubeconfig_is_named_at_start(pg_database_url, tmp_path):
    env = portal_env(PORTAL_DATABASE_URL=pg_database_url, PORTAL_SESSION_SECRET="m" * 40,
                     PORTAL_API_TOKENS=json.dumps({"ops": {"role": "admin", "sha256": "0" * 64}}),
                     PORTAL_KUBE_CONFIG_MODE="kubeconfig", PORTAL_KUBECONFIG=str(tmp_path / "missing"),
                     PORTAL_PORT=str(free_port()))
    result = run(env=env)
    assert result.returncode == 2 and "cannot start the collector" in result.stderr
    assert "PORTAL_COLLECTOR_ENABLED=false" in result.stderr
