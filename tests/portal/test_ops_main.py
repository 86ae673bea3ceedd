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
from portal_test_kube import FakeKubeApi
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
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: k, cluster: {{server: '{api.url}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n")
    yield config
    api.close()


def test_serves_collects_and_stops_cleanly_on_sigterm(pg_database_url, kube, tmp_path):
    port = free_port()
    tokens = json.dumps({"ops": {"role": "admin", "sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}})
    env = portal_env(PORTAL_DATABASE_URL=pg_database_url, PORTAL_HOST="127.0.0.1", PORTAL_PORT=str(port),
                     PORTAL_API_TOKENS=tokens, PORTAL_KUBE_CONFIG_MODE="kubeconfig", PORTAL_KUBECONFIG=str(kube),
                     PORTAL_SESSION_SECRET="m" * 40, PORTAL_STORAGE_BASE_PATH=str(tmp_path))
    log = open(tmp_path / "portal.log", "w+")
    process = subprocess.Popen([sys.executable, "-m", "portal"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        url, deadline, ready = f"http://127.0.0.1:{port}", time.monotonic() + 60, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert ready is not None and ready.json() == {"status": "ok", "database": "ok"}, Path(log.name).read_text()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{url}/api/me", headers=auth).json()["admin"] is True
        assert httpx.get(f"{url}/api/me").status_code == 401
        engine = sa.create_engine(pg_database_url)
        for _ in range(100):  # the collector thread records the running pod from the cluster
            with engine.connect() as conn:
                found = conn.execute(sa.text("SELECT user_name, started_at FROM pod_sessions")).all()
            if found:
                break
            time.sleep(0.2)
        engine.dispose()
        assert [row[0] for row in found] == ["alice"]

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert time.monotonic() - started < 25
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    lines = [line for line in Path(log.name).read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    messages = [r["message"] for r in records]
    assert "database schema is current" in messages and "portal stopped" in messages
    assert any(r["logger"] == "portal.access" and r["path"] == "/api/me" for r in records)
    assert TOKEN not in Path(log.name).read_text()


def test_a_missing_kubeconfig_is_named_at_start(pg_database_url, tmp_path):
    env = portal_env(PORTAL_DATABASE_URL=pg_database_url, PORTAL_SESSION_SECRET="m" * 40,
                     PORTAL_API_TOKENS=json.dumps({"ops": {"role": "admin", "sha256": "0" * 64}}),
                     PORTAL_KUBE_CONFIG_MODE="kubeconfig", PORTAL_KUBECONFIG=str(tmp_path / "missing"),
                     PORTAL_PORT=str(free_port()))
    result = run(env=env)
    assert result.returncode == 2 and "cannot start the collector" in result.stderr
    assert "PORTAL_COLLECTOR_ENABLED=false" in result.stderr
