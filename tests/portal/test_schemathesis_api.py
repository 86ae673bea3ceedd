"""schemathesis against the app's own OpenAPI document, in-process (ASGI), on a real PostgreSQL database,
as an admin (bearer token) and as a user (browser session with its CSRF token): generated valid and invalid
input never gets a 5xx."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from portal_api_support import ADMIN_TOKEN, make_portal
from portal_test_pods import user_pod

from portal.app.auth.cookies import SESSION_COOKIE

pytest_plugins = ["conftest_api"]
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402  (only once schemathesis is known to be there)
from schemathesis.checks import not_a_server_error  # noqa: E402

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES = int(os.environ.get("JHUB_SCHEMATHESIS_EXAMPLES", "40"))  # per operation and mode


@pytest.fixture
def api_schema(pg_url, cluster, tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith(("PORTAL_", "JUPYTERHUB_"))]:
        monkeypatch.delenv(name)
    (tmp_path / "storage").mkdir()
    # sign-in configured too, so /login and /oauth_callback are exercised (the hub is never reached:
    # no generated request carries a valid signed state)
    portal = make_portal(pg_url, cluster, tmp_path / "storage", hub_api_url="http://127.0.0.1:9/hub/api",
                         oauth_client_secret="x" * 32, oauth_callback_url="http://portal.test/oauth_callback")
    now = portal.now
    portal.add_session("alice", start=now - timedelta(hours=5), end=now - timedelta(hours=1))
    portal.add_session("bob", start=now - timedelta(hours=2))
    portal.cluster.add(user_pod("alice", uid="uid-alice"))
    for name in ("alice", "bob"):
        (portal.storage / name).mkdir()
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", portal.app, headers=AUTH)
    assert len(list(schema.get_all_operations())) >= 13  # the whole API, not an empty document
    session = portal.ctx.sessions.create(name="alice", admin=False)
    csrf = portal.ctx.signer.csrf_token(portal.ctx.signer.read_session(session))
    schema.credentials = {"admin-token": AUTH,
                          "user-session": {"Cookie": f"{SESSION_COOKIE}={session}", "X-CSRF-Token": csrf}}
    yield schema
    portal.engine.dispose()


@pytest.mark.parametrize(("who", "mode"), [("admin-token", "positive"), ("admin-token", "negative"),
                                         ("user-session", "positive"), ("user-session", "negative")])
def test_no_input_makes_the_api_fail(api_schema, who, mode):
    """Every operation, with generated input that fits its schema (positive) and that breaks it (negative).

    (Driven through Hypothesis directly: schemathesis' pytest fixture loader does not run under pytest 9.)
    """
    from schemathesis.generation.modes import GenerationMode

    headers, tried, answered = api_schema.credentials[who], [], set()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if who == "user-session" and operation.label == "POST /logout":
            continue  # it ends the session server-side, and every later request would be a 401 (test_auth_routes)

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        def check(case):
            if who == "user-session":  # the session alone: no generated bearer token or cookie on top
                case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
                case.cookies = {}
            response = case.call(headers=headers)
            answered.add((operation.label, response.status_code))
            case.validate_response(response, checks=[not_a_server_error], headers=headers)

        try:
            check()
        except Unsatisfiable:  # nothing about this operation can be invalid (e.g. GET /healthz)
            assert mode == "negative" and not operation.path_parameters and not operation.query, operation.label
            continue
        tried.append(operation.label)
    assert "PUT /api/limits/{username}" in tried and "POST /api/pods/{namespace}/{name}/delete" in tried
    assert "GET /api/billing" in tried and "POST /api/storage/{name}/remove" in tried
    if mode == "positive":  # the credentials were honoured (not a run of 401s)
        assert ("GET /api/me", 200) in answered and ("GET /api/sessions", 200) in answered
