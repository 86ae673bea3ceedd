"""Every route of the app refuses a request without credentials (walking the app's routes), the hub's
token reads limits and notices and nothing else, admin routes refuse users, and browser sessions need CSRF tokens."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner
from portal_api_support import ADMIN_TOKEN, HUB_TOKEN

from portal.app.auth.cookies import SESSION_COOKIE, CookieSigner
from portal.app.auth.guard import authenticate, require_admin
from portal.app.factory import PUBLIC_PATHS, _check_every_route_is_guarded
from portal.app.routing import walk

pytest_plugins = ["conftest_api"]

SAMPLE = {"namespace": "jhub", "name": "jupyter-alice", "username": "alice", "filename": "portal.css"}
# Why each public path is public (the brief allows only explicitly listed, justified exemptions):
JUSTIFIED_PUBLIC = {
    "/healthz": "liveness probe from the kubelet: no credentials, answers only {status: ok}",
    "/readyz": "readiness probe from the kubelet: no credentials, answers only whether the database is up",
    "/metrics": "Prometheus scrapes without credentials; route templates and counts only, no user data",
    "/login": "starts signing in: only redirects to the hub's authorize endpoint",
    "/oauth_callback": "finishes signing in: signs in only whom the hub vouches for, for a matching state",
}


def every_request(app) -> list[tuple[str, str, bool]]:
    """(method, concrete path, admin-only) for every method of every route the app answers."""
    requests = []
    for route in walk(app):
        path = route.path
        for key, value in SAMPLE.items():
            path = path.replace("{" + key + "}", value)
        assert "{" not in path, f"add a sample value for {route.path}"
        for method in sorted(route.methods - {"HEAD"}):
            requests.append((method, path, require_admin in route.dependency_calls))
    return requests


def test_the_public_routes_are_exactly_the_justified_ones(portal):
    public = {route.path for route in walk(portal.app) if authenticate not in route.dependency_calls}
    assert public == set(JUSTIFIED_PUBLIC) == PUBLIC_PATHS


def test_every_other_route_refuses_a_request_without_credentials(portal):
    client = portal.client()
    checked = 0
    for method, path, _ in every_request(portal.app):
        if path in PUBLIC_PATHS:
            continue
        reply = client.request(method, path, json={} if method != "GET" else None)
        if method == "GET" and not path.startswith("/api/"):
            assert reply.status_code == 303, (method, path, reply.status_code)
            assert reply.headers["location"].startswith("/login?next="), path
        else:
            assert reply.status_code == 401, (method, path, reply.status_code, reply.text)
            assert reply.headers["www-authenticate"] == "Bearer"
        assert "alice" not in reply.text.replace("jupyter-alice", "").replace("/alice", "")
        checked += 1
    assert checked >= 25  # the walk found the app's routes (not an empty list)


def test_public_routes_hold_no_user_data_and_sign_in_only_starts_or_refuses(portal):
    client = portal.client()
    portal.add_session("alice", start=portal.now)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok"}
    assert "alice" not in client.get("/metrics").text
    # no hub configured here: sign-in says so; with a hub it redirects there (see test_auth_hub_oauth)
    assert client.get("/login").status_code == 404
    assert client.get("/oauth_callback?code=x&state=y").status_code == 404
    assert SESSION_COOKIE not in client.cookies


@pytest.mark.parametrize("cookie", ["", "garbage", "eyJuIjoiYWRtaW4iLCJhIjp0cnVlLCJzIjoieCJ9.AAAA.BBBB"])
def test_a_forged_session_cookie_is_refused(portal, cookie):
    client = portal.client()
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/api/me").status_code == 401


def test_a_cookie_signed_with_another_secret_is_refused(portal):
    other = CookieSigner("another-secret-" + "x" * 40, max_age=3600, secure=False)
    client = portal.client()
    real = portal.ctx.signer.read_session(portal.ctx.sessions.create(name="admin", admin=True))
    client.cookies.set(SESSION_COOKIE, other.session_value(real))
    assert client.get("/api/me").status_code == 401


def test_a_well_signed_cookie_of_no_session_is_refused(portal):
    """The signature alone signs nobody in: the session must exist server-side."""
    client = portal.client()
    client.cookies.set(SESSION_COOKIE, portal.ctx.signer.session_value(portal.ctx.signer.new_session_id()))
    assert client.get("/api/me").status_code == 401


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(portal):
    client = portal.client("alice")
    copy = client.cookies.get(SESSION_COOKIE)
    assert client.get("/api/me").status_code == 200
    assert client.post("/logout", headers={"X-CSRF-Token": portal.csrf(client)}).status_code == 200
    replay = portal.client()
    replay.cookies.set(SESSION_COOKIE, copy)
    assert replay.get("/api/me").status_code == 401
    assert replay.get("/pods").headers["location"].startswith("/login")


def test_an_expired_session_is_refused(portal, monkeypatch):
    past = time.time() - portal.ctx.web.session_max_age_seconds - 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(past))
    stale = portal.ctx.sessions.create(name="alice", admin=False)
    monkeypatch.undo()
    client = portal.client()
    client.cookies.set(SESSION_COOKIE, stale)
    assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize("header", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer a b", f"Bearer {ADMIN_TOKEN}x",
                                    f"Bearer {ADMIN_TOKEN[:-1]}", "Bearer " + "0" * 64],
                         ids=["basic", "bearer-empty", "bearer-two-words", "token-plus-one", "token-minus-one",
                              "zeros"])  # fixed ids: the token is random (pytest-xdist workers must agree)
def test_wrong_or_malformed_tokens_are_refused(portal, header):
    client = portal.client()
    assert client.get("/api/me", headers={"Authorization": header}).status_code == 401


def test_a_bad_token_is_not_rescued_by_a_good_cookie(portal):
    client = portal.client("alice")
    assert client.get("/api/me").status_code == 200
    assert client.get("/api/me", headers={"Authorization": "Bearer wrong-token"}).status_code == 401


def test_the_hub_token_reads_limits_and_notices_and_nothing_else(portal):
    hub = portal.client(token=HUB_TOKEN)
    allowed = {("GET", "/api/limits/alice"), ("GET", "/api/users/alice/notices")}
    for method, path in allowed:
        assert hub.get(path).status_code == 200, path
    for method, path, _ in every_request(portal.app):
        if path in PUBLIC_PATHS or (method, path) in allowed:
            continue
        reply = hub.request(method, path, json={} if method != "GET" else None)
        assert reply.status_code == 403, (method, path, reply.status_code)
        assert "may only read user limits and notices" in reply.text, (method, path)


def test_admin_routes_refuse_ordinary_users(portal):
    user = portal.client("alice")
    csrf = portal.csrf(user)
    admin_only = [(m, p) for m, p, admin in every_request(portal.app) if admin]
    assert ("POST", "/api/pods/jhub/jupyter-alice/delete") in admin_only
    assert ("PUT", "/api/limits/alice") in admin_only
    for method, path in admin_only:
        reply = user.request(method, path, headers={"X-CSRF-Token": csrf},
                             json={"confirm": "x", "idle_days": 1} if method != "GET" else None)
        assert reply.status_code == 403, (method, path, reply.status_code)


def test_the_admin_token_is_an_admin(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    assert admin.get("/api/me").json() == {"name": "token:ops", "admin": True, "via": "api-token"}
    assert admin.get("/api/audit").status_code == 200


LIMITS = {"cpu": 8, "memoryGiB": 32, "gpus": 1, "gpuHoursMonthly": 50}


def test_browser_sessions_need_the_csrf_token_for_changes(portal):
    admin = portal.client("root", admin=True)
    assert admin.put("/api/limits/alice", json=LIMITS).status_code == 403
    assert admin.put("/api/limits/alice", json=LIMITS, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    other_session = portal.client("root", admin=True)
    stolen = portal.csrf(other_session)  # a token of another session does not work either
    assert admin.put("/api/limits/alice", json=LIMITS, headers={"X-CSRF-Token": stolen}).status_code == 403
    assert portal.audit() == []
    ok = admin.put("/api/limits/alice", json=LIMITS, headers={"X-CSRF-Token": portal.csrf(admin)})
    assert ok.status_code == 200
    fields = {k: str(v) for k, v in LIMITS.items()}
    assert admin.post("/limits/alice", data=fields).status_code == 403
    form = admin.post("/limits/alice", data={**fields, "csrf_token": portal.csrf(admin)})
    assert form.status_code == 303


def test_bearer_clients_need_no_csrf_token(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    assert admin.put("/api/limits/alice", json=LIMITS).status_code == 200


def test_the_factory_refuses_an_unguarded_route(portal):
    @portal.app.get("/api/oops")
    def oops() -> dict:
        return {"secret": True}

    with pytest.raises(RuntimeError, match="/api/oops is not behind authentication"):
        _check_every_route_is_guarded(portal.app)
