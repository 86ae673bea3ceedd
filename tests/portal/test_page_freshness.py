"""No cached page outlives a change to the data it shows: sessions the collector opens and closes, limit
edits and rate changes show on the next load of every page (a user's own page, a named user's page, the
overview, billing), each figure equal to what the uncached API reports; a render that read the data
before a change is not kept after it; routine writes (sign-ins, the collector's heartbeat) keep the
caches, GPU samples too (shown within the view-cache bound); pages not yet cached are rendered a few at a time, once per page key (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import secrets
from datetime import timedelta

import sqlalchemy as sa
from gpu_test_support import T0, add_session, holder, sample
from portal_api_support import ADMIN_TOKEN, make_portal, sha

from portal.app.pages.render_queue import RenderQueue
from portal.billing.rates import set_rate
from portal.collector.store import load_known, write_changes
from portal.meta import COLLECTOR_HEARTBEAT, write_time

pytest_plugins = ["conftest_api"]

LIMITS = {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 1.0, "budgetMonthly": None}


def _big(page: str, card: str) -> str:
    return re.search(rf'id="{card}"><span class="big">([^<]*)</span>', page).group(1).strip()


def _billing_total(page: str) -> str:
    return re.search(r'id="total">([^<]*)</th>', page).group(1)


def _api_cost(portal, user: str) -> float:
    """This month's cost of ``user`` as the uncached limits API computes it."""
    return portal.client(token=ADMIN_TOKEN).get(f"/api/limits/{user}").json()["used"]["costThisMonth"]


def _api_total(portal) -> float:
    return portal.client(token=ADMIN_TOKEN).get("/api/billing").json()["total_cost"]


def _pages(alice, carol) -> dict[str, str]:
    return {"me": alice.get("/me").text, "users": carol.get("/users/alice").text,
            "overview": carol.get("/overview").text, "billing": carol.get("/billing").text}


def _assert_pages_match_the_api(portal, pages: dict[str, str]) -> None:
    cost = _api_cost(portal, "alice")
    for name in ("me", "users"):
        assert _big(pages[name], "my-cost") == f"{cost:.2f} {portal.ctx.settings.currency}", name
    total = _api_total(portal)
    assert _big(pages["overview"], "cost-month") == f"{total:.2f} {portal.ctx.settings.currency}"
    assert _billing_total(pages["billing"]) == f"{total:.2f}"


def _close(portal, uid: str, end) -> None:
    """Close a session as the collector does: its store, on the portal's engine, in one transaction."""
    with portal.engine.begin() as connection:
        record = load_known(connection)[uid]
        closed = dataclasses.replace(record, ended_at=end, end_source="finished", last_seen_at=end)
        assert write_changes(connection, [closed], zone=portal.ctx.settings.zone, now=portal.now) == [uid]


def test_a_session_the_collector_closes_shows_on_every_page_at_once(portal):
    uid = portal.add_session("alice", start=portal.now - timedelta(hours=3))
    alice, carol = portal.client("alice"), portal.client("carol", admin=True)
    before = _pages(alice, carol)
    assert "running" in before["me"]
    _assert_pages_match_the_api(portal, before)
    assert _pages(alice, carol) == before  # served from the cache

    _close(portal, uid, portal.now - timedelta(hours=2))
    after = _pages(alice, carol)
    assert "running" not in after["me"] and "running" not in after["users"]
    assert _big(after["me"], "my-cost") != _big(before["me"], "my-cost")  # 1 h billed now, not 3 h
    _assert_pages_match_the_api(portal, after)

    portal.add_session("alice", start=portal.now - timedelta(hours=1))  # a new one opens: shown at once too
    again = _pages(alice, carol)
    assert "running" in again["me"]
    _assert_pages_match_the_api(portal, again)


def test_a_limit_edit_shows_on_the_users_pages_and_the_overview_at_once(portal):
    portal.add_session("alice", start=portal.now - timedelta(hours=3), end=portal.now - timedelta(hours=1))
    alice, carol = portal.client("alice"), portal.client("carol", admin=True)
    assert "Nobody is over budget" in carol.get("/overview").text
    assert "GPU-hours left" not in alice.get("/me").text
    reply = carol.put("/api/limits/alice", json=LIMITS, headers={"X-CSRF-Token": portal.csrf(carol)})
    assert reply.status_code == 200 and reply.json()["over"]["gpuHours"] == 1.0
    overview = carol.get("/overview").text
    assert "Nobody is over budget" not in overview and _big(overview, "over-budget-count") == "1"
    for page in (alice.get("/me").text, carol.get("/users/alice").text):
        assert "of 1 GPU-hours left" in page and "over by 1.00 GPU-hours" in page
    assert carol.delete("/api/limits/alice", headers={"X-CSRF-Token": portal.csrf(carol)}).status_code == 200
    assert "Nobody is over budget" in carol.get("/overview").text
    assert "GPU-hours left" not in alice.get("/me").text


def test_a_rate_change_shows_on_every_page_at_once(portal):
    portal.add_session("alice", start=portal.now - timedelta(hours=3), end=portal.now - timedelta(hours=1))
    alice, carol = portal.client("alice"), portal.client("carol", admin=True)
    before = _pages(alice, carol)
    _assert_pages_match_the_api(portal, before)
    admin = portal.client(token=ADMIN_TOKEN)
    body = {"gpu_model": "", "gpu_hour": 40.0, "cpu_core_hour": 0.0, "memory_gib_hour": 0.0}
    assert admin.post("/api/rates", json=body).status_code == 200  # from today: the session's day
    after = _pages(alice, carol)
    assert _big(after["me"], "my-cost") == f"80.00 {portal.ctx.settings.currency}"  # 2 GPU-hours at 40
    _assert_pages_match_the_api(portal, after)

    with portal.engine.begin() as connection:  # as the configured rates are applied at start
        set_rate(connection, gpu_model="", prices={"gpu_hour": 50.0, "cpu_core_hour": 0.0, "memory_gib_hour": 0.0},
                 effective_from=portal.now.astimezone(portal.ctx.settings.zone).date(), actor="config",
                 now=portal.now)
    later = _pages(alice, carol)
    assert _big(later["me"], "my-cost") == f"100.00 {portal.ctx.settings.currency}"
    _assert_pages_match_the_api(portal, later)


def test_a_write_that_is_rolled_back_keeps_the_caches(portal):
    alice = portal.client("alice")
    alice.get("/me")
    with portal.engine.connect() as connection:
        connection.execute(sa.text("DELETE FROM pod_sessions WHERE user_name = 'nobody'"))
        connection.rollback()
    assert portal.ctx.pages._entries


def test_routine_writes_keep_the_caches(portal):
    alice = portal.client("alice")
    alice.get("/me")
    entries = dict(portal.ctx.pages._entries)
    portal.client("bob")  # a sign-in writes its session row
    with portal.engine.begin() as connection:  # the collector's heartbeat
        write_time(connection, COLLECTOR_HEARTBEAT, portal.now)
    assert portal.ctx.pages._entries == entries


def test_gpu_samples_keep_the_caches_and_show_within_the_bound(pg_url, cluster, tmp_path, monkeypatch):
    agent_token = "agent-" + secrets.token_urlsafe(24)
    made = make_portal(pg_url, cluster, tmp_path, api_tokens={
        "ops": {"role": "admin", "sha256": sha(ADMIN_TOKEN)}, "agent-gpu01": {"role": "agent", "sha256": sha(agent_token)}})
    made.now = T0 + timedelta(hours=3)
    try:
        with made.engine.begin() as connection:
            add_session(connection, uid="uid-alice", user="alice")
        alice = made.client("alice")
        assert "The GPU agent reports no utilisation here" in alice.get("/me").text
        body = {"node": "gpu01", "batch_id": "b-1", "samples": [
            sample("GPU-a", T0 + timedelta(minutes=m), util=3.0, holders=[holder("jupyter-alice")]) for m in range(3)]}
        assert made.client(token=agent_token).post("/api/gpu/samples", json=body).json()["accepted"] == 3
        assert "The GPU agent reports no utilisation here" in alice.get("/me").text  # cached: a measurement
        made.ctx.views.clock = made.ctx.pages.clock = lambda: 10**9  # the view-cache period later
        assert "averaged 3 % this week" in alice.get("/me").text
    finally:
        for client in made.clients:
            client.close()
        made.engine.dispose()


def test_a_value_computed_across_a_change_is_not_kept(portal):
    views = portal.ctx.views
    made = []

    def make():
        made.append(1)
        if len(made) == 1:  # the data changes (and is committed) while this value is being computed
            portal.add_session("alice", start=portal.now - timedelta(hours=1))
        return len(made)

    assert views.get(("k",), make) == 1
    assert views.get(("k",), make) == 2  # not the value read before the change
    assert views.get(("k",), make) == 2 and len(made) == 2


def test_a_write_outside_the_process_shows_within_the_view_cache_bound(portal):
    portal.add_session("alice", start=portal.now - timedelta(hours=5), end=portal.now - timedelta(hours=4))
    alice = portal.client("alice")
    assert "running" not in alice.get("/me").text
    other = sa.create_engine(portal.engine.url)  # another replica, or psql: not this process's engine
    try:
        with other.begin() as connection:
            connection.execute(sa.text("UPDATE pod_sessions SET ended_at = NULL, end_source = NULL"))
    finally:
        other.dispose()
    assert "running" not in alice.get("/me").text  # cached, until the bound
    portal.ctx.views.clock = portal.ctx.pages.clock = lambda: 10**9
    assert "running" in alice.get("/me").text


def test_pages_not_yet_cached_render_a_few_at_a_time_and_once_per_key():
    queue = RenderQueue(slots=2)
    running, most, calls = 0, 0, []

    async def work(key):
        nonlocal running, most
        running += 1
        most = max(most, running)
        calls.append(key)
        await asyncio.sleep(0.01)
        running -= 1
        return key

    async def request(key):
        if await queue.wait_for(key):
            return "waited"
        return await queue.render(key, lambda: work(key))

    async def main():
        return await asyncio.gather(*(request(key) for key in ("a", "a", "b", "c", "d", "a")))

    assert asyncio.run(main()) == ["a", "waited", "b", "c", "d", "waited"]
    assert most == 2 and sorted(calls) == ["a", "b", "c", "d"]
