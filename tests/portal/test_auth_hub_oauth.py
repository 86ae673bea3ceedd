"""Signing in through a real JupyterHub (the jupyterhub package, run as a subprocess) with the portal
registered as its OAuth service; users' own hub tokens as bearer tokens."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import pytest
from portal_api_support import LiveServer, free_port, make_portal

pytest_plugins = ["conftest_api"]


def browse(client: httpx.Client, url: str, hub, user: str, password: str | None = None) -> httpx.Response:
    """Follow redirects like a browser; log in at the hub's form when it asks."""
    response = client.get(url)
    for _ in range(20):
        if response.is_redirect:
            response = client.get(urljoin(str(response.url), response.headers["location"]))
            continue
        form = re.search(r'<form[^>]*action="([^"]*)"[^>]*>', response.text) if "/hub/login" in str(
            response.url) else None
        if form is None:
            return response
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', response.text).group(1)
        action = urljoin(str(response.url), form.group(1).replace("&amp;", "&"))
        response = client.post(action, data={"username": user, "password": password or hub.password, "_xsrf": xsrf})
    raise AssertionError("too many redirects")


def test_a_user_signs_in_through_jupyterhub_and_sees_who_they_are(hub, hub_portal):
    with httpx.Client(timeout=20) as browser:
        start = browser.get(f"{hub_portal.url}/login?next=/api/me")
        assert start.status_code == 302
        target = urlparse(start.headers["location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{hub.url}/hub/api/oauth2/authorize"
        query = parse_qs(target.query)
        assert query["client_id"] == ["service-portal"] and query["response_type"] == ["code"]
        assert query["code_challenge_method"] == ["S256"]

        me = browse(browser, f"{hub_portal.url}/login?next=/api/me", hub, "alice")
        assert str(me.url) == f"{hub_portal.url}/api/me"
        assert me.json() == {"name": "alice", "admin": False, "via": "session"}
        cookie = next(c for c in browser.cookies.jar if c.name == "portal_session")
        assert cookie.domain == hub.portal_host and cookie.has_nonstandard_attr("HttpOnly")
        # the session is the portal's own: the hub's access token is not in it
        assert "." in cookie.value and len(cookie.value) < 200


def test_hub_admins_are_portal_admins(hub, hub_portal):
    with httpx.Client(timeout=20) as browser:
        me = browse(browser, f"{hub_portal.url}/login?next=/api/me", hub, "admin")
        assert me.json() == {"name": "admin", "admin": True, "via": "session"}
        assert browse(browser, f"{hub_portal.url}/api/audit", hub, "admin").status_code == 200
    with httpx.Client(timeout=20) as browser:
        browse(browser, f"{hub_portal.url}/login", hub, "carol")
        assert browser.get(f"{hub_portal.url}/api/audit").status_code == 403


def test_a_callback_without_the_matching_state_signs_nobody_in(hub, hub_portal):
    with httpx.Client(timeout=20) as stranger:
        reply = stranger.get(f"{hub_portal.url}/oauth_callback", params={"code": "stolen", "state": "guess"})
        assert reply.status_code == 400
        assert "portal_session" not in stranger.cookies
    with httpx.Client(timeout=20) as browser:
        first = browser.get(f"{hub_portal.url}/login")
        state = parse_qs(urlparse(first.headers["location"]).query)["state"][0]
        forged = browser.get(f"{hub_portal.url}/oauth_callback", params={"code": "not-from-the-hub", "state": state})
        assert forged.status_code == 403  # the hub refused the code
        assert "portal_session" not in browser.cookies
        assert browser.get(f"{hub_portal.url}/api/me").status_code == 401


def test_after_sign_in_only_local_paths_are_followed(hub, hub_portal):
    with httpx.Client(timeout=20) as browser:
        landed = browse(browser, f"{hub_portal.url}/login?next=https://evil.example/x", hub, "dave")
        assert str(landed.url) == f"{hub_portal.url}/pods"
    with httpx.Client(timeout=20) as browser:
        landed = browse(browser, f"{hub_portal.url}/login?next=//evil.example/x", hub, "dave")
        assert str(landed.url) == f"{hub_portal.url}/pods"


def test_a_users_own_hub_token_is_a_bearer_token_for_the_api(hub, hub_portal):
    token = hub.user_token("erin")
    with httpx.Client(base_url=hub_portal.url, timeout=20) as api:
        me = api.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json() == {"name": "erin", "admin": False, "via": "hub-token"}
        assert api.get("/api/me", headers={"Authorization": f"token {token}"}).status_code == 200
        assert api.get("/api/me", headers={"Authorization": "Bearer " + "x" * 40}).status_code == 401


def test_a_hub_token_without_access_to_the_portal_is_refused(hub, hub_portal):
    token = hub.user_token("frank", scopes=["read:users:name!user"])
    with httpx.Client(base_url=hub_portal.url, timeout=20) as api:
        assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize("header", ["X-Forwarded-User", "X-Remote-User", "Remote-User", "X-Auth-Request-User"])
def test_identity_headers_from_the_client_are_ignored(hub, hub_portal, header):
    with httpx.Client(base_url=hub_portal.url, timeout=20) as api:
        assert api.get("/api/me", headers={header: "admin"}).status_code == 401
        assert api.get("/api/me?user=admin&username=admin").status_code == 401


def _tester(hub) -> httpx.Client:
    return httpx.Client(base_url=hub.api_url, headers={"Authorization": f"token {hub.tester}"}, timeout=20)


def test_a_demoted_hub_admin_loses_portal_admin_within_the_check_bound(hub, hub_portal):
    with _tester(hub) as api:
        assert api.post("/users/gina", json={"admin": True}).status_code == 201
        with httpx.Client(timeout=20) as browser:
            assert browse(browser, f"{hub_portal.url}/login?next=/api/me", hub, "gina").json()["admin"] is True
            assert browser.get(f"{hub_portal.url}/api/audit").status_code == 200
            assert browser.get(f"{hub_portal.url}/overview").status_code == 200  # now in the page cache
            assert api.patch("/users/gina", json={"admin": False}).status_code == 200
            hub_portal.now += timedelta(seconds=hub_portal.ctx.web.hub_check_seconds)  # the bound passes
            assert browser.get(f"{hub_portal.url}/api/me").json() == {"name": "gina", "admin": False, "via": "session"}
            assert browser.get(f"{hub_portal.url}/api/audit").status_code == 403
            assert browser.get(f"{hub_portal.url}/overview").status_code == 403  # not the cached admin page
            assert api.delete("/users/gina").status_code == 204  # a user the hub no longer has is signed out
            hub_portal.now += timedelta(seconds=hub_portal.ctx.web.hub_check_seconds)
            assert browser.get(f"{hub_portal.url}/api/me").status_code == 401
    assert hub_portal.ctx.web.hub_check_seconds == 60  # the documented default bound


def test_a_revoked_hub_token_stops_working_within_the_cache_bound(hub, pg_url, cluster, tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith(("PORTAL_", "JUPYTERHUB_"))]:
        monkeypatch.delenv(name)
    settings = {**hub.portal_settings(), "hub_check_seconds": 1}
    made = make_portal(pg_url, cluster, tmp_path, **settings)
    with _tester(hub) as tester, LiveServer(made.app, "127.0.0.1", free_port()) as live:
        tester.post("/users/hank")
        issued = tester.post("/users/hank/tokens", json={"note": "revoked soon"}).json()
        headers = {"Authorization": f"Bearer {issued['token']}"}
        with httpx.Client(base_url=live.url, timeout=20) as api:
            assert api.get("/api/me", headers=headers).status_code == 200
            assert tester.delete(f"/users/hank/tokens/{issued['id']}").status_code == 204
            time.sleep(1.1)  # PORTAL_HUB_CHECK_SECONDS
            assert api.get("/api/me", headers=headers).status_code == 401
    made.engine.dispose()
