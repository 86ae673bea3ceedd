"""The local trial on the embedded SQLite database: the API's reads and audited writes work there too."""

from __future__ import annotations

import os
from datetime import timedelta

from portal_api_support import ADMIN_TOKEN, HUB_TOKEN, make_portal

pytest_plugins = ["conftest_api"]


def test_the_api_works_on_sqlite(sqlite_url, cluster, tmp_path):
    storage = tmp_path / "storage"
    (storage / "olduser").mkdir(parents=True)
    made = make_portal(sqlite_url, cluster, storage)
    stamp = (made.now - timedelta(days=30)).timestamp()
    os.utime(storage / "olduser", (stamp, stamp))
    made.add_session("alice", start=made.now - timedelta(hours=3), end=made.now - timedelta(hours=1))
    admin = made.client(token=ADMIN_TOKEN)
    limits = {"cpu": 4.0, "memoryGiB": 16.0, "gpus": 1, "gpuHoursMonthly": 10.0}
    assert admin.put("/api/limits/alice", json=limits).status_code == 200
    assert made.client(token=HUB_TOKEN).get("/api/limits/alice").json()["remaining"]["gpuHours"] == 8.0
    assert admin.get("/api/billing").json()["rows"][0]["gpu_cost"] == 8.0
    assert [s["user"] for s in made.client("alice").get("/api/sessions").json()["sessions"]] == ["alice"]
    orphan = {"idle_days": 30, "confirm": "olduser", "orphan": True}  # olduser: no sessions, no known owner
    assert admin.post("/api/storage/olduser/remove", json=orphan).status_code == 200
    assert [(e["action"], e["detail"]["result"]) for e in made.audit()] == [("limits.update", "ok"),
                                                                            ("storage.remove", "ok")]
    made.engine.dispose()


def test_a_trial_agent_sends_samples_with_an_agent_role_api_token(sqlite_url, cluster, tmp_path):
    """Without Kubernetes there is no TokenReview: PORTAL_AGENT_AUTH=api-token (the default) takes agent-role
    API tokens, bound to no node. The deployed portal runs with =kubernetes, which refuses such tokens."""
    from gpu_test_support import T0, sample
    from portal_api_support import sha

    token = "trial-agent-token-" + "t" * 24
    made = make_portal(sqlite_url, cluster, tmp_path, api_tokens={
        "ops": {"role": "admin", "sha256": sha(ADMIN_TOKEN)}, "agent": {"role": "agent", "sha256": sha(token)}})
    made.now = T0 + timedelta(hours=1)
    assert made.app.state.portal.web.agent_auth == "api-token" and made.app.state.portal.agents is None
    body = {"node": "laptop", "batch_id": "b-1", "samples": [sample("GPU-a", T0)]}
    assert made.client(token=token).post("/api/gpu/samples", json=body).json() == {"accepted": 1, "duplicates": 0}
    assert made.client(token=ADMIN_TOKEN).post("/api/gpu/samples", json=body).status_code == 403
    made.engine.dispose()
