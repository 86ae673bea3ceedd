"""Cookie SSO against a real SSO server started by the test, in-process and through a real jupyterhub."""

import socket
import time
from types import SimpleNamespace
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest

from hubtest_configs import jhub_cfg
from hubtest_http import RecordingServer
from hubtest_hub import Hub, header
from jhub_cookie_sso import CookieSSOAuthenticator, SSOSessionInvalid, SSOUnavailable, cookie_value

COOKIE = "sso_session"
HUB_COOKIES = "jupyterhub-session-id=hub-session-123; _xsrf=2|abc|def|1; jupyterhub-hub-login=secret-hub-cookie"


def sso_answer(request):
    value = cookie_value(request["headers"].get("cookie", ""), COOKIE)
    if value == "good-alice":
        return 200, {"user": {"name": "Alice", "email": "alice@example.com"}}
    if value == "slow":
        return 200, {"user": {"name": "slowpoke"}}, 3
    if value == "nameless":
        return 200, {"user": {}}
    if value == "broken":
        return 500, {"detail": "db down"}
    return 401, {"detail": "not logged in"}


@pytest.fixture(scope="module")
def sso():
    srv = RecordingServer()
    srv.start()
    srv.route("GET", "/api/auth/me", sso_answer)
    yield srv
    srv.stop()


def authenticator(auth_me_url, **traits):
    return CookieSSOAuthenticator(cookie_name=COOKIE, auth_me_url=auth_me_url, login_url="https://sso.example.com/login",
                                  username_field="user.name", timeout=1.0, **traits)


def handler_with(cookie_header, host="hub.internal:8000"):
    headers = HTTPHeaders({"Cookie": cookie_header, "Host": host})
    request = HTTPServerRequest(method="GET", uri="/hub/login?next=%2Fhub%2Fspawn", headers=headers, host=host)
    return SimpleNamespace(request=request, hub=SimpleNamespace(base_url="/hub/"),
                           get_argument=lambda name, default="": "/hub/spawn" if name == "next" else default)


@pytest.mark.asyncio
async def test_valid_cookie_gives_the_user_and_only_that_cookie_travels(tornado_client, sso):
    sso.requests.clear()
    auth = authenticator(f"{sso.url}/api/auth/me")
    got = await auth.authenticate(handler_with(f"{HUB_COOKIES}; {COOKIE}=good-alice; other=1"))
    assert got == {"name": "Alice"}
    (req,) = sso.requests
    assert req["headers"]["cookie"] == f"{COOKIE}=good-alice"
    assert "authorization" not in req["headers"]


@pytest.mark.asyncio
@pytest.mark.parametrize("value,error", [("expired", SSOSessionInvalid), ("nameless", SSOUnavailable),
                                         ("broken", SSOUnavailable), ("slow", SSOUnavailable)])
async def test_bad_sessions_and_bad_answers(tornado_client, sso, value, error):
    auth = authenticator(f"{sso.url}/api/auth/me")
    started = time.monotonic()
    with pytest.raises(error):
        await auth.authenticate(handler_with(f"{COOKIE}={value}"))
    assert time.monotonic() - started < 2.5  # the 3 s answer is cut at the 1 s timeout


@pytest.mark.asyncio
async def test_sso_down_is_unavailable_and_no_cookie_is_invalid(tornado_client, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/me"
    with pytest.raises(SSOUnavailable):
        await authenticator(closed).authenticate(handler_with(f"{COOKIE}=good-alice"))
    with pytest.raises(SSOSessionInvalid):
        await authenticator(closed).authenticate(handler_with(HUB_COOKIES))
    assert "good-alice" not in caplog.text


def test_login_redirect_is_absolute_and_returns_to_the_hub_login():
    auth = authenticator("https://sso.example.com/me", next_parameter="return_to")
    got = urlsplit(auth.sso_login_redirect(handler_with("", host="hub.internal:8000")))
    assert (got.scheme, got.netloc, got.path) == ("https", "sso.example.com", "/login")
    assert parse_qs(got.query) == {"return_to": ["http://hub.internal:8000/hub/login?next=%2Fhub%2Fspawn"]}
    auth.hub_public_url = "https://hub.example.com/"
    auth.login_url = "https://sso.example.com/login?app=jhub"
    got = urlsplit(auth.sso_login_redirect(handler_with("")))
    assert parse_qs(got.query) == {"app": ["jhub"],
                                   "return_to": ["https://hub.example.com/hub/login?next=%2Fhub%2Fspawn"]}


@pytest.fixture(scope="module")
def hub(sso, tmp_path_factory):
    cfg = jhub_cfg(auth={"mode": "cookie-sso", "adminUsers": ["alice"], "cookieSso": {
        "cookieName": COOKIE, "authMeUrl": f"{sso.url}/api/auth/me",
        "loginUrl": "https://sso.example.com/login?app=jhub", "usernameField": "user.name",
        "nextParameter": "return_to", "timeoutSeconds": 1, "hubPublicUrl": "https://hub.example.com"}})
    running = Hub(tmp_path_factory.mktemp("sso-hub"), cfg)
    yield running
    running.stop()


def test_real_hub_without_cookie_goes_to_the_sso_login_with_next(hub, sso):
    sso.requests.clear()
    status, headers, _ = hub.request("GET", "/hub/login?next=%2Fhub%2Fhome", headers={"Cookie": HUB_COOKIES})
    assert status == 302
    back = "https://hub.example.com/hub/login?next=" + quote("/hub/home", safe="")
    assert header(headers, "Location") == ["https://sso.example.com/login?app=jhub&return_to=" + quote(back, safe="")]
    assert sso.requests == []  # no cookie, no question to the SSO


def test_real_hub_signs_in_with_a_valid_cookie_forwarding_only_it(hub, sso):
    sso.requests.clear()
    status, headers, _ = hub.request("GET", "/hub/login?next=%2Fhub%2Fhome",
                                     headers={"Cookie": f"{HUB_COOKIES}; {COOKIE}=good-alice"})
    assert status == 302 and header(headers, "Location") == ["/hub/home"]
    assert any(c.startswith("jupyterhub-session-id=") or c.startswith("jupyterhub-hub-login=")
               for c in header(headers, "Set-Cookie"))
    assert [r["headers"]["cookie"] for r in sso.requests] == [f"{COOKIE}=good-alice"]
    assert "good-alice" not in hub.log() and "User logged in: alice" in hub.log()


def test_real_hub_sends_an_invalid_session_back_to_the_sso(hub):
    status, headers, _ = hub.request("GET", "/hub/login", headers={"Cookie": f"{COOKIE}=expired"})
    assert status == 302
    assert header(headers, "Location")[0].startswith("https://sso.example.com/login?app=jhub&return_to=")


def test_real_hub_shows_503_when_the_sso_is_slow_instead_of_looping(hub):
    started = time.monotonic()
    status, _, body = hub.request("GET", "/hub/login", headers={"Cookie": f"{COOKIE}=slow"})
    assert status == 503 and b"sign-in service is not answering" in body
    assert time.monotonic() - started < 2.5
