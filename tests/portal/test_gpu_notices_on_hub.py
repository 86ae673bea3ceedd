"""The idle-GPU warning on the hub's own pages: a real `jupyterhub` process configured by jhub_setup (as the
chart's hub pod is) asks the real portal, served on a real socket over PostgreSQL, for the signed-in user's
notices with the hub's token, and shows them as a banner; without the portal the page still answers, with
no banner and one log line."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from gpu_test_support import T0, add_session, every, holder, sample
from portal_api_support import HUB_TOKEN, LiveServer, free_port, make_portal, sha

HUB_TESTS = Path(__file__).resolve().parents[1] / "hub"
if str(HUB_TESTS) not in sys.path:
    sys.path.insert(0, str(HUB_TESTS))

from hubtest_configs import jhub_cfg  # noqa: E402
from hubtest_hub import Hub, header  # noqa: E402
from test_hub_native_admins import sign_in  # noqa: E402

pytest_plugins = ["conftest_api"]
AGENT_TOKEN = "agent-token-for-the-notices-test-0123"
PASSWORDS = {"alice": "Alice-Notices-Pw-42", "bob": "Bob-Notices-Pw-42"}
ANNOUNCEMENT = "Maintenance on Friday"
BANNER = re.compile(r'<div class="container jhub-notice alert (alert-\w+)"\s+role="alert" data-kind="([^"]*)">'
                    r"([^<]*)</div>")


@pytest.fixture
def portal_and_hub(pg_url, cluster, tmp_path, monkeypatch):
    for name in ("PORTAL_GPU_RECLAIM_ENABLED", "PORTAL_GPU_IDLE_PERIOD_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    storage = tmp_path / "storage"
    storage.mkdir()
    portal = make_portal(pg_url, cluster, storage, api_tokens={
        "hub": {"role": "hub", "sha256": sha(HUB_TOKEN)}, "agent-gpu01": {"role": "agent", "sha256": sha(AGENT_TOKEN)}})
    portal.now = T0 + timedelta(hours=3)
    with portal.engine.begin() as conn:  # bob's server holds a GPU that has computed nothing for 2 h 5 min
        add_session(conn, uid="uid-bob", user="bob")
    samples = [sample("GPU-b", at, util=0.0, holders=[holder("jupyter-bob")])
               for at in every(T0 + timedelta(minutes=55), T0 + timedelta(hours=3), 60)]
    body = {"node": "gpu01", "batch_id": "b-1", "samples": samples}
    assert portal.client(token=AGENT_TOKEN).post("/api/gpu/samples", json=body).json()["accepted"] == len(samples)
    live = LiveServer(portal.app, "127.0.0.1", free_port()).__enter__()
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    cfg = jhub_cfg(auth={"mode": "native", "adminUsers": ["admin", *PASSWORDS]},
                   branding={"announcement": ANNOUNCEMENT},
                   portal={"enabled": True, "url": live.url, "notices": {"refreshSeconds": 1}})
    hub = Hub(hub_dir, cfg, env={"JHUB_PORTAL_TOKEN": HUB_TOKEN, "JHUB_NATIVE_ADMIN_PASSWORDS": json.dumps(PASSWORDS)})
    try:
        yield portal, live, hub
    finally:
        hub.stop()
        live.__exit__(None, None, None)
        for client in portal.clients:
            client.close()
        portal.engine.dispose()


def home(hub, user) -> tuple[str, float]:
    status, headers = sign_in(hub, user, PASSWORDS[user])
    assert status == 302, hub.log()[-3000:]
    cookies = "; ".join(c.split(";", 1)[0] for c in header(headers, "Set-Cookie"))
    started = time.monotonic()
    status, _, body = hub.request("GET", "/hub/home", headers={"Cookie": cookies})
    assert status == 200, f"{status}\n{hub.log()[-3000:]}"
    return body.decode(), time.monotonic() - started


def test_the_hub_page_shows_the_users_own_idle_gpu_warning(portal_and_hub):
    _, _, hub = portal_and_hub
    page, _ = home(hub, "bob")
    assert BANNER.findall(page) == [("alert-warning", "idle-gpu", "Your server holds 1 GPU that has been idle "
                                     "since 2026-05-20 08:55 CST. Please stop it when you no longer need the GPUs.")]
    assert ANNOUNCEMENT in page  # the site announcement stays, above the notices
    assert page.index(ANNOUNCEMENT) < page.index("jhub-notice")
    page, _ = home(hub, "alice")
    assert "jhub-notice" not in page and ANNOUNCEMENT in page
    assert HUB_TOKEN not in hub.log()


def test_without_the_portal_the_page_answers_with_no_banner_and_one_log_line(portal_and_hub):
    _, live, hub = portal_and_hub
    assert BANNER.findall(home(hub, "bob")[0])
    live.__exit__(None, None, None)  # the portal goes away
    time.sleep(1.2)  # past notices.refreshSeconds
    page, took = home(hub, "bob")
    assert "jhub-notice" not in page and ANNOUNCEMENT in page and took < 3
    lines = [line for line in hub.log().splitlines() if "no notices banner for bob" in line]
    assert len(lines) == 1 and live.url in lines[0], hub.log()[-3000:]
    assert HUB_TOKEN not in hub.log()
