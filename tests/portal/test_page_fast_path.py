"""Cached pages answered before routing (portal.app.pages.fast_path): only the same request from the same
identity, checked now, gets the page the full path answered before; a signed-out, expired or demoted
session, another user, another query, a token or a flash message goes the full way; the answer keeps the
security headers, the metrics' route template and the access log's user (real PostgreSQL)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from portal_api_support import ADMIN_TOKEN

from portal.app.auth.cookies import SESSION_COOKIE
from portal.models import PortalSession

pytest_plugins = ["conftest_api"]


class Spy:
    """Counts the requests the fast path answered."""

    def __init__(self, portal) -> None:
        self.answered = 0
        index, find = portal.ctx.page_index, portal.ctx.page_index.find

        def spied(scope, principal):
            found = find(scope, principal)
            if found is not None and portal.ctx.pages.peek(found[0]) is not None:
                self.answered += 1
            return found

        index.find = spied


def test_a_page_asked_for_again_is_answered_before_routing_and_is_the_same_page(portal):
    spy = Spy(portal)
    alice = portal.client("alice")
    first = alice.get("/me")
    assert first.status_code == 200 and spy.answered == 0
    again = alice.get("/me")
    assert spy.answered == 1 and again.text == first.text
    for name in ("content-security-policy", "x-frame-options", "cache-control", "content-type"):
        assert again.headers[name] == first.headers[name], name
    metrics = portal.client().get("/metrics").text
    assert 'portal_http_requests_total{method="GET",route="/me",status="200"} 2.0' in metrics


def test_the_access_log_names_the_user_of_a_fast_answer(portal, caplog):
    alice = portal.client("alice")
    alice.get("/me")
    with caplog.at_level(logging.INFO, logger="portal.access"):
        alice.get("/me")
    users = [getattr(r, "user", None) for r in caplog.records if getattr(r, "path", None) == "/me"]
    assert users == ["alice"]


def test_signed_out_expired_and_demoted_sessions_go_the_full_way(portal):
    spy = Spy(portal)
    alice, carol = portal.client("alice"), portal.client("carol", admin=True)
    for client, path in ((alice, "/me"), (carol, "/overview")):
        assert client.get(path).status_code == 200 and client.get(path).status_code == 200
    assert spy.answered == 2
    cookie = alice.cookies.get(SESSION_COOKIE)
    assert alice.post("/logout", headers={"X-CSRF-Token": portal.csrf(alice)}).status_code == 200
    replay = portal.client()
    replay.cookies.set(SESSION_COOKIE, cookie)
    assert replay.get("/me").headers["location"].startswith("/login")

    with portal.engine.begin() as connection:  # the hub said carol is no admin any more
        connection.execute(sa.update(PortalSession.__table__).values(admin=False))
    portal.ctx.sessions._cache.clear()
    assert carol.get("/overview").status_code == 403
    assert carol.get("/me").status_code == 200 and "Usage of" in carol.get("/me").text

    with portal.engine.begin() as connection:  # every session expired
        connection.execute(sa.update(PortalSession.__table__).values(expires_at=portal.now))
    portal.ctx.sessions._cache.clear()
    assert carol.get("/me").headers["location"].startswith("/login")
    assert spy.answered == 3  # carol's own /me once, after her demotion; nothing after the expiry


def test_another_user_another_query_a_token_or_a_flash_go_the_full_way(portal):
    spy = Spy(portal)
    alice, bob = portal.client("alice"), portal.client("bob")
    portal.add_session("alice", start=portal.now.replace(hour=1), end=portal.now.replace(hour=2))
    assert "<td>gpu01</td>" in alice.get("/me").text
    assert "<td>gpu01</td>" not in bob.get("/me").text  # bob's own page, never alice's
    assert bob.get("/users/alice").status_code == 403
    assert alice.get("/billing").status_code == 200
    assert alice.get("/billing?month=nonsense").status_code == 422  # validated by the full path
    assert alice.get("/billing?month=2026-04").status_code == 200
    token = portal.client(token=ADMIN_TOKEN)
    assert token.get("/billing").status_code == 200 and token.get("/billing").status_code == 200
    alice.cookies.set("portal_flash", "x")
    assert alice.get("/billing").status_code == 200
    assert spy.answered == 0
