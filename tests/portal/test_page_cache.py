"""The page cache and the session cache: a viewer is only ever served a page rendered for the same
identity, with the CSRF token of their own session; signing out ends a session at once; a change made
through the portal shows on the next page, one made elsewhere within the view-cache bound; a session row
deleted outside this process is honoured for at most PORTAL_SESSION_CACHE_SECONDS."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa
from portal_api_support import ADMIN_TOKEN, Portal

from portal.app.auth.cookies import SESSION_COOKIE
from portal.models import PortalSession

pytest_plugins = ["conftest_api"]

LIMITS = {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0, "budgetMonthly": None}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _clocks(portal) -> Clock:
    clock = Clock()
    portal.ctx.views.clock = portal.ctx.pages.clock = portal.ctx.sessions.monotonic = clock
    return clock


def _who(page: str) -> str:
    return re.search(r'<span id="who">([^<]*)</span>', page).group(1)


def _csrf(page: str) -> set[str]:
    return set(re.findall(r'name="csrf_token" value="([^"]*)"', page))


def test_each_viewer_gets_a_page_rendered_for_them_with_their_own_csrf_token(portal):
    _clocks(portal)
    portal.add_session("alice", start=portal.now - timedelta(hours=3), end=portal.now - timedelta(hours=1))
    alice, alice_again, bob = portal.client("alice"), portal.client("alice"), portal.client("bob")
    carol, dave = portal.client("carol", admin=True), portal.client("dave", admin=True)
    for _ in range(2):  # the second round is served from the cache
        pages = {name: client.get("/me").text for name, client in
                 (("alice", alice), ("alice-again", alice_again), ("bob", bob), ("carol", carol))}
        assert {name: _who(page) for name, page in pages.items()} == {
            "alice": "alice", "alice-again": "alice", "bob": "bob", "carol": "carol"}
        assert "<td>gpu01</td>" in pages["alice"] and "<td>gpu01</td>" not in pages["bob"]
        for name, client in (("alice", alice), ("alice-again", alice_again), ("bob", bob), ("carol", carol)):
            assert _csrf(pages[name]) == {portal.csrf(client)}  # the session's own token, never another's
        for client, name in ((carol, "carol"), (dave, "dave")):
            overview = client.get("/overview")
            assert overview.status_code == 200 and _who(overview.text) == name
            assert _csrf(overview.text) == {portal.csrf(client)}
        assert bob.get("/overview").status_code == 403  # the guard still runs before the cache
        assert bob.get("/users/alice").status_code == 403
    assert len(portal.ctx.pages._entries) == 4  # /me of alice, bob, carol; /overview shared by the admins
    admin_page = portal.client(token=ADMIN_TOKEN).get("/billing")  # a token: no session, no sign-out form
    assert admin_page.status_code == 200 and _csrf(admin_page.text) == set() and "csrf-marker" not in admin_page.text


def test_admins_share_the_overview_and_billing_but_each_sees_their_own_name_escaped(portal):
    _clocks(portal)
    odd = "o'neil&<co>"
    carol, other = portal.client("carol", admin=True), portal.client(odd, admin=True)
    alice = portal.client("alice")
    for path in ("/overview", "/billing?group_by=gpu_model", "/users/alice"):
        first, second = carol.get(path), other.get(path)
        assert first.status_code == second.status_code == 200
        assert _who(first.text) == "carol" and _who(second.text) == "o&#39;neil&amp;&lt;co&gt;"
        assert "name-marker" not in first.text + second.text and "csrf-marker" not in first.text + second.text
        assert _csrf(second.text) == {portal.csrf(other)}
    assert len(portal.ctx.pages._entries) == 3  # one per page, shared by both admins
    page = alice.get("/billing?group_by=gpu_model")  # a user gets a page of their own, not the admins'
    assert _who(page.text) == "alice" and len(portal.ctx.pages._entries) == 4
    assert alice.get("/users/alice").status_code == 200 and len(portal.ctx.pages._entries) == 5


def test_the_cache_serves_what_it_rendered_until_the_bound_then_renders_again(portal):
    clock = _clocks(portal)
    alice = portal.client("alice")
    assert "<td>gpu01</td>" not in alice.get("/me").text
    other = Portal(app=None, engine=sa.create_engine(portal.engine.url), cluster=None, storage=None, now=portal.now)
    try:  # written behind the portal's back (another engine: not this process's writes, which clear the cache)
        other.add_session("alice", start=portal.now - timedelta(hours=3), end=portal.now - timedelta(hours=1))
    finally:
        other.engine.dispose()
    assert "<td>gpu01</td>" not in alice.get("/me").text  # cached
    clock.now += portal.ctx.web.view_cache_seconds
    assert "<td>gpu01</td>" in alice.get("/me").text  # the documented bound (PORTAL_VIEW_CACHE_SECONDS)
    assert portal.ctx.web.view_cache_seconds == 30


def test_an_admins_edit_shows_on_the_next_page_at_once(portal):
    _clocks(portal)
    carol, alice = portal.client("carol", admin=True), portal.client("alice")
    assert "GPU-hours left" not in carol.get("/users/alice").text
    assert "GPU-hours left" not in alice.get("/me").text
    reply = carol.put("/api/limits/alice", json=LIMITS, headers={"X-CSRF-Token": portal.csrf(carol)})
    assert reply.status_code == 200
    assert "of 100 GPU-hours left" in carol.get("/users/alice").text
    assert "of 100 GPU-hours left" in alice.get("/me").text


def test_a_refused_change_does_not_empty_the_cache(portal):
    _clocks(portal)
    alice = portal.client("alice")
    alice.get("/me")
    assert portal.ctx.pages._entries
    assert alice.put("/api/limits/alice", json=LIMITS, headers={"X-CSRF-Token": portal.csrf(alice)}).status_code == 403
    assert portal.client().post("/logout").status_code in (303, 401)
    assert portal.ctx.pages._entries


def test_a_page_with_a_flash_message_is_not_cached(portal):
    _clocks(portal)
    alice = portal.client("alice")
    alice.cookies.set("portal_flash", "x")
    assert alice.get("/me").status_code == 200
    assert not portal.ctx.pages._entries


def test_signing_out_ends_a_cached_session_at_once(portal):
    _clocks(portal)
    alice = portal.client("alice")
    cookie = alice.cookies.get(SESSION_COOKIE)
    assert alice.get("/me").status_code == 200 and portal.ctx.sessions._cache  # the session row is cached
    assert alice.post("/logout", headers={"X-CSRF-Token": portal.csrf(alice)}).status_code == 200
    replay = portal.client()
    replay.cookies.set(SESSION_COOKIE, cookie)
    assert replay.get("/me").headers["location"].startswith("/login")
    assert replay.get("/api/me").status_code == 401


def test_a_session_deleted_outside_the_process_ends_within_the_session_cache_bound(portal):
    clock = _clocks(portal)
    alice = portal.client("alice")
    assert alice.get("/api/me").status_code == 200
    with portal.engine.begin() as conn:
        conn.execute(sa.delete(PortalSession.__table__))
    assert alice.get("/api/me").status_code == 200  # the cached row, for at most the bound
    clock.now += portal.ctx.web.session_cache_seconds
    assert alice.get("/api/me").status_code == 401
    assert portal.ctx.web.session_cache_seconds == 5


def test_the_caches_can_be_turned_off(pg_url, cluster, tmp_path, monkeypatch):
    from conftest_api import _clean_environment
    from portal_api_support import make_portal

    _clean_environment(monkeypatch)
    (tmp_path / "s").mkdir()
    made = make_portal(pg_url, cluster, tmp_path / "s", view_cache_seconds=0, session_cache_seconds=0)
    try:
        alice = made.client("alice")
        assert alice.get("/me").status_code == 200
        assert not made.ctx.pages._entries and not made.ctx.sessions._cache
        with made.engine.begin() as conn:
            conn.execute(sa.delete(PortalSession.__table__))
        assert alice.get("/api/me").status_code == 401
    finally:
        for client in made.clients:
            client.close()
        made.engine.dispose()
