"""The site's own CA (`caFile`, from jhub:auth.caCertificate) really is what the hub trusts: real TLS servers
with a certificate of a test CA, for the OIDC provider, the cookie SSO, the portal and LDAP (StartTLS and
LDAPS). Without the CA the same servers are refused, so each check can fail."""

from types import SimpleNamespace

import pytest
from oauthenticator.oauth2 import _serialize_state
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from traitlets import import_item
from traitlets.config import Config

import hubtest_slapd as ldap
import jhub_setup
from hubtest_configs import jhub_cfg
from hubtest_http import RecordingServer
from hubtest_tls import TestCA
from jhub_config import validate
from jhub_cookie_sso import SSOUnavailable
from jhub_limits import PortalUnavailable, fetch_limits


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    authority = TestCA()
    authority.file = str(authority.write(tmp_path_factory.mktemp("ca")))
    authority.server = authority.issue("127.0.0.1", "localhost")
    return authority


@pytest.fixture
def https(ca):
    srv = RecordingServer(tls=ca.server)
    srv.start()
    yield srv
    srv.stop()


def build(auth, env=None):
    c = Config()
    cleaned = jhub_setup.configure(c, jhub_cfg(auth=auth), env={"OAUTH_CLIENT_SECRET": "s", **(env or {})})
    return import_item(c.JupyterHub.authenticator_class)(config=c), cleaned


def callback_handler(code):
    state = _serialize_state({"state_id": "s", "code_verifier": "v" * 50})
    return SimpleNamespace(get_argument=lambda name, default=None: code if name == "code" else default,
                           get_state_cookie=lambda: state, request=SimpleNamespace(protocol="https", host="hub"))


@pytest.mark.asyncio
@pytest.mark.parametrize("trusted", [True, False], ids=["with-ca", "without-ca"])
async def test_oidc_provider_behind_the_internal_ca(tornado_client, https, ca, trusted):
    https.route("POST", "/token", lambda req: (200, {"access_token": "at-alice", "token_type": "Bearer"}))
    https.route("GET", "/me", lambda req: (200, {"preferred_username": "alice"}))
    oidc = {"clientId": "jhub", "callbackUrl": "https://hub/hub/oauth_callback", "authorizeUrl": f"{https.url}/auth",
            "tokenUrl": f"{https.url}/token", "userdataUrl": f"{https.url}/me", "caFile": ca.file if trusted else ""}
    auth, _ = build({"mode": "oidc", "allowedUsers": ["alice"], "oidc": oidc})
    assert auth.validate_server_cert is True
    if trusted:
        assert auth.http_request_kwargs == {"ca_certs": ca.file}
        assert (await auth.get_authenticated_user(callback_handler("c"), None))["name"] == "alice"
    else:
        with pytest.raises(Exception):
            await auth.get_authenticated_user(callback_handler("c"), None)
        assert not https.requests, "no request may reach a server whose certificate is not trusted"


def sso_handler(cookie):
    headers = HTTPHeaders({"Cookie": cookie, "Host": "hub"})
    request = HTTPServerRequest(method="GET", uri="/hub/login", headers=headers, host="hub")
    return SimpleNamespace(request=request, hub=SimpleNamespace(base_url="/hub/"), get_argument=lambda n, d="": d)


@pytest.mark.asyncio
@pytest.mark.parametrize("trusted", [True, False], ids=["with-ca", "without-ca"])
async def test_cookie_sso_behind_the_internal_ca(tornado_client, https, ca, trusted):
    https.route("GET", "/me", lambda req: (200, {"username": "alice"}))
    auth, _ = build({"mode": "cookie-sso", "cookieSso": {
        "cookieName": "s", "authMeUrl": f"{https.url}/me", "loginUrl": "https://sso/login",
        "caFile": ca.file if trusted else ""}})
    if trusted:
        assert auth.ca_certs == ca.file
        assert await auth.authenticate(sso_handler("s=ok")) == {"name": "alice"}
    else:
        with pytest.raises(SSOUnavailable):
            await auth.authenticate(sso_handler("s=ok"))


@pytest.mark.asyncio
@pytest.mark.parametrize("trusted", [True, False], ids=["with-ca", "without-ca"])
async def test_portal_behind_the_internal_ca(tornado_client, https, ca, trusted, monkeypatch):
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", "portal-token-0123456789")
    https.route("GET", "/api/limits/alice", lambda req: (200, {"user": "alice", "limits": {}}))
    portal = validate(jhub_cfg(portal={"enabled": True, "url": https.url, "caFile": ca.file if trusted else ""}))["portal"]
    if trusted:
        assert (await fetch_limits("alice", portal))["user"] == "alice"
    else:
        with pytest.raises(PortalUnavailable):
            await fetch_limits("alice", portal)


@pytest.fixture(scope="module")
def slapd_tls(tmp_path_factory, ca):
    if ldap.missing():
        pytest.skip(f"no real LDAP server: {ldap.missing()}")
    server = ldap.Slapd(tmp_path_factory.mktemp("slapd-tls"), tls=(ca.server, ca.file))
    yield server
    server.stop()


def ldap_auth(server, tls, **fields):
    port = server.tls_port if tls == "on_connect" else server.port
    section = {"serverAddress": "127.0.0.1", "serverPort": port, "tls": tls,
               "bindDnTemplates": [f"uid={{username}},{ldap.PEOPLE}"], "allowedGroups": [ldap.GPU_GROUP], **fields}
    return build({"mode": "ldap", "ldap": section})[0]


async def ldap_sign_in(auth):
    got = await auth.get_authenticated_user(None, {"username": "alice", "password": ldap.PASSWORDS["alice"]})
    return got and got["name"]


@pytest.mark.asyncio
@pytest.mark.parametrize("tls", ["before_bind", "on_connect"])
async def test_ldap_tls_is_verified_against_the_internal_ca(slapd_tls, ca, tls):
    trusted = ldap_auth(slapd_tls, tls, caFile=ca.file)
    assert trusted.tls_kwargs["ca_certs_file"] == ca.file
    assert await ldap_sign_in(trusted) == "alice"
    untrusted = ldap_auth(slapd_tls, tls)  # the public CAs do not know the test CA
    with pytest.raises(Exception, match="(?i)certificate|ssl|tls|handshake|socket"):
        await ldap_sign_in(untrusted)
    unchecked = ldap_auth(slapd_tls, tls, verifyTls=False)  # the operator's explicit choice
    assert await ldap_sign_in(unchecked) == "alice"
