"""The GPU routes: agent-role tokens may only send samples, and only they may; a retried batch counts
once; notices are the signed-in user's own and readable by the hub's page (CORS for its origin only)."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from gpu_test_support import T0, add_session, every, holder, sample
from portal_api_support import ADMIN_TOKEN, HUB_TOKEN, make_portal, sha

pytest_plugins = ["conftest_api"]
AGENT_TOKEN = "agent-" + secrets.token_urlsafe(24)


@pytest.fixture
def gpu_portal(pg_url, cluster, tmp_path, monkeypatch):
    for name in ("PORTAL_GPU_RECLAIM_ENABLED", "PORTAL_GPU_IDLE_PERIOD_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    made = make_portal(pg_url, cluster, tmp_path, hub_public_url="http://hub.example:30080", api_tokens={
        "ops": {"role": "admin", "sha256": sha(ADMIN_TOKEN)}, "hub": {"role": "hub", "sha256": sha(HUB_TOKEN)},
        "agent-gpu01": {"role": "agent", "sha256": sha(AGENT_TOKEN)}})
    made.now = T0 + timedelta(hours=3)
    yield made
    for client in made.clients:
        client.close()
    made.engine.dispose()


def _body(samples, batch_id="b-1"):
    return {"node": "gpu01", "batch_id": batch_id, "samples": samples}


def test_an_agent_token_sends_samples_and_a_retry_is_not_counted_twice(gpu_portal):
    with gpu_portal.engine.begin() as conn:
        add_session(conn, uid="uid-alice", user="alice")
    agent = gpu_portal.client(token=AGENT_TOKEN)
    body = _body([sample("GPU-a", T0 + timedelta(minutes=m), holders=[holder("jupyter-alice")]) for m in range(3)])
    assert agent.post("/api/gpu/samples", json=body).json() == {"accepted": 3, "duplicates": 0}
    assert agent.post("/api/gpu/samples", json=body).json() == {"accepted": 0, "duplicates": 3}
    from portal.gpu.queries import session_gpu_usage

    with gpu_portal.engine.connect() as conn:
        assert session_gpu_usage(conn, pod_uids=["uid-alice"])["uid-alice"].samples == 3
    later = {**_body([sample("GPU-a", T0 + timedelta(minutes=9))], "b-2"), "dropped_samples": 40}
    assert agent.post("/api/gpu/samples", json=later).json() == {"accepted": 1, "duplicates": 0}
    metrics = gpu_portal.client().get("/metrics").text
    assert 'portal_gpu_samples_total{result="accepted"} 4.0' in metrics
    assert 'portal_gpu_samples_total{result="duplicate"} 3.0' in metrics
    assert 'portal_gpu_agent_dropped_samples{node="gpu01"} 40.0' in metrics


def test_agent_tokens_may_do_nothing_else_and_nobody_else_may_send_samples(gpu_portal):
    agent = gpu_portal.client(token=AGENT_TOKEN)
    for path in ("/api/me", "/api/limits", "/api/limits/alice", "/api/pods", "/api/me/notices", "/pods"):
        reply = agent.get(path)
        assert reply.status_code == 403 and "may only send GPU samples" in reply.text, path
    body = _body([sample("GPU-a", T0)])
    for client in (gpu_portal.client(token=ADMIN_TOKEN), gpu_portal.client(token=HUB_TOKEN)):
        assert client.post("/api/gpu/samples", json=body).status_code == 403
    user = gpu_portal.client("mallory")
    assert user.post("/api/gpu/samples", json=body, headers={"X-CSRF-Token": gpu_portal.csrf(user)}).status_code == 403
    assert gpu_portal.client().post("/api/gpu/samples", json=body).status_code == 401


def test_bad_batches_get_a_422_naming_the_problem(gpu_portal):
    agent = gpu_portal.client(token=AGENT_TOKEN)
    future = agent.post("/api/gpu/samples", json=_body([sample("GPU-a", T0 + timedelta(hours=4))]))
    assert future.status_code == 422 and "in the future" in future.text and "gpu01" in future.text
    naive = _body([sample("GPU-a", T0)])
    naive["samples"][0]["at"] = "2026-05-20T00:00:00"
    assert agent.post("/api/gpu/samples", json=naive).status_code == 422
    too_busy = _body([sample("GPU-a", T0, util=140.0)])
    assert agent.post("/api/gpu/samples", json=too_busy).status_code == 422


def test_notices_are_the_users_own_and_the_hub_page_may_read_them(gpu_portal):
    with gpu_portal.engine.begin() as conn:
        add_session(conn, uid="uid-bob", user="bob")
    agent = gpu_portal.client(token=AGENT_TOKEN)
    samples = [sample("GPU-b", at, util=0.0, holders=[holder("jupyter-bob")])
               for at in every(T0 + timedelta(minutes=55), T0 + timedelta(hours=3), 60)]
    assert agent.post("/api/gpu/samples", json=_body(samples)).json()["accepted"] == len(samples)
    bob = gpu_portal.client("bob")
    reply = bob.get("/api/me/notices", headers={"Origin": "http://hub.example:30080"})
    assert [n["idle_since"] for n in reply.json()["notices"]] == ["2026-05-20T00:55:00Z"]
    assert reply.headers["access-control-allow-origin"] == "http://hub.example:30080"
    assert reply.headers["access-control-allow-credentials"] == "true"
    other = bob.get("/api/me/notices", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    assert gpu_portal.client("alice").get("/api/me/notices").json() == {"notices": []}
    assert gpu_portal.client().get("/api/me/notices").status_code == 401


def test_the_hubs_token_reads_any_users_notices_and_users_only_their_own(gpu_portal):
    with gpu_portal.engine.begin() as conn:
        add_session(conn, uid="uid-bob", user="bob")
    agent = gpu_portal.client(token=AGENT_TOKEN)
    samples = [sample("GPU-b", at, util=0.0, holders=[holder("jupyter-bob")])
               for at in every(T0 + timedelta(minutes=55), T0 + timedelta(hours=3), 60)]
    assert agent.post("/api/gpu/samples", json=_body(samples)).json()["accepted"] == len(samples)
    own = gpu_portal.client("bob").get("/api/me/notices").json()
    assert [n["idle_since"] for n in own["notices"]] == ["2026-05-20T00:55:00Z"]
    for client in (gpu_portal.client(token=HUB_TOKEN), gpu_portal.client(token=ADMIN_TOKEN),
                   gpu_portal.client("bob"), gpu_portal.client("root", admin=True)):
        assert client.get("/api/users/bob/notices").json() == own  # the same answer as the user's own route
    assert gpu_portal.client(token=HUB_TOKEN).get("/api/users/alice/notices").json() == {"notices": []}
    refused = gpu_portal.client("alice").get("/api/users/bob/notices")
    assert refused.status_code == 403 and "only see your own notices" in refused.text
    assert gpu_portal.client().get("/api/users/bob/notices").status_code == 401
    assert gpu_portal.client(token=AGENT_TOKEN).get("/api/users/bob/notices").status_code == 403
    assert gpu_portal.client(token=HUB_TOKEN).get("/api/users/a%01b/notices").status_code == 422
