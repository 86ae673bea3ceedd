"""Safe defaults, with the real authenticator classes built from the config that configure() produces."""

import json
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest
from oauthenticator.oauth2 import _serialize_state
from jupyterhub import orm
from traitlets.config import Config
from traitlets import import_item

import jhub_setup
from hubtest_configs import jhub_cfg

SECRET_ENV = {"OAUTH_CLIENT_SECRET": "client-secret-xyz"}
OAUTH = {"clientId": "jhub", "callbackUrl": "https://hub.example.com/hub/oauth_callback"}


def build(auth, env=None, **extra):
    """(authenticator instance, config) exactly as configure() leaves them."""
    c = Config()
    jhub_setup.configure(c, jhub_cfg(auth=auth), env={**SECRET_ENV, **(env or {})})
    cls = import_item(c.JupyterHub.authenticator_class)
    return cls(config=c, **extra), c


@pytest.fixture
def db():
    return orm.new_session_factory("sqlite://")()


def native(db, env=None, **native_cfg):
    auth = {"mode": "native", "adminUsers": ["admin", "root2"], "native": native_cfg}
    return build(auth, env=env, db=db)[0]


ADMIN_PW = {"JHUB_NATIVE_ADMIN_PASSWORDS": json.dumps({"admin": "Initial-Admin-Pw-42"})}


@pytest.mark.asyncio
async def test_native_admin_signs_in_at_once_and_nobody_can_claim_an_admin_name(db, monkeypatch):
    monkeypatch.setenv("JHUB_NATIVE_ADMIN_PASSWORDS", ADMIN_PW["JHUB_NATIVE_ADMIN_PASSWORDS"])
    auth = native(db)
    assert auth.allow_all is False and auth.enable_signup is True and auth.open_signup is False
    got = await auth.get_authenticated_user(None, {"username": "admin", "password": "Initial-Admin-Pw-42"})
    assert got["name"] == "admin" and got["admin"] is True
    # The attacker who arrives first cannot take over or shadow an admin name, in any case.
    for name in ("admin", "Admin", "root2"):
        assert auth.create_user(name, "Attacker-Pw-9999") is None
    assert await auth.get_authenticated_user(None, {"username": "admin", "password": "Attacker-Pw-9999"}) is None
    assert await auth.get_authenticated_user(None, {"username": "root2", "password": "Attacker-Pw-9999"}) is None
    # A restart does not reset a password the admin changed.
    auth.change_password("admin", "Changed-Admin-Pw-77")
    again = native(db)
    assert await again.get_authenticated_user(None, {"username": "admin", "password": "Changed-Admin-Pw-77"})


@pytest.mark.asyncio
async def test_native_signups_wait_for_approval_unless_open_signup(db):
    auth = native(db)
    assert auth.create_user("carol", "Carol-Strong-Pw-1") is not None
    assert await auth.get_authenticated_user(None, {"username": "carol", "password": "Carol-Strong-Pw-1"}) is None
    info = auth.get_user("carol")
    info.is_authorized = True
    db.commit()
    got = await auth.get_authenticated_user(None, {"username": "carol", "password": "Carol-Strong-Pw-1"})
    assert got["name"] == "carol" and not got["admin"]
    opened = native(db, openSignup=True)
    opened.create_user("dave", "Dave-Strong-Pw-1")
    assert await opened.get_authenticated_user(None, {"username": "dave", "password": "Dave-Strong-Pw-1"})
    closed = native(db, enableSignup=False)
    assert closed.create_user("erin", "Erin-Strong-Pw-1") is None


@pytest.fixture
def github_api(server):
    members = {("acme", "alice")}
    server.route("GET", "/api/v3/orgs/*", lambda req: (
        204 if tuple(req["path"].split("/")[4:7:2]) in members else 404, {"message": "Not Found"}))
    return server


def github_model(name, admin=None):
    return {"name": name, "admin": admin, "auth_state": {
        "token_response": {"access_token": "gho_test", "token_type": "bearer"}, "github_user": {"login": name}}}


@pytest.mark.asyncio
async def test_github_allowed_organisations_really_restrict(github_api):
    auth, c = build({"mode": "github", "adminUsers": ["root"], "allowedUsers": ["bob"],
                     "github": {**OAUTH, "allowedOrganizations": ["acme"], "githubUrl": github_api.url}})
    assert auth.allow_all is False and auth.client_secret == "client-secret-xyz"
    assert auth.scope == ["read:org"]
    assert await auth.check_allowed("alice", github_model("alice")) is True
    assert await auth.check_allowed("mallory", github_model("mallory")) is False
    assert await auth.check_allowed("bob", github_model("bob")) is True
    assert [r["path"] for r in github_api.requests] == ["/api/v3/orgs/acme/members/alice",
                                                        "/api/v3/orgs/acme/members/mallory"]
    assert github_api.requests[0]["headers"]["authorization"] == "Bearer gho_test"


def azure_model(name, tid):
    return {"name": name, "admin": None, "auth_state": {"user": {"tid": tid, "preferred_username": name}}}


@pytest.mark.asyncio
async def test_azuread_tenant_really_restricts():
    tenant = "11111111-2222-3333-4444-555555555555"
    auth, _ = build({"mode": "azuread", "azuread": {**OAUTH, "tenantId": tenant}})
    assert auth.allow_all is False and tenant in auth.authorize_url
    assert await auth.check_allowed("alice", azure_model("alice", tenant)) is True
    assert await auth.check_allowed("mallory", azure_model("mallory", "other-tenant")) is False
    narrowed, _ = build({"mode": "azuread", "allowedUsers": ["alice"], "azuread": {**OAUTH, "tenantId": tenant}})
    assert await narrowed.check_allowed("alice", azure_model("alice", tenant)) is True
    assert await narrowed.check_allowed("bob", azure_model("bob", tenant)) is False
    assert await narrowed.check_allowed("alice", azure_model("alice", "other-tenant")) is False


IDP_USERS = {"alice": ["ml", "x"], "mallory": ["x"], "bob": []}


@pytest.fixture
def idp(server):
    """An OIDC issuer's token and userinfo endpoints (Keycloak cannot run here), answering recorded JSON."""
    server.route("POST", "/token", lambda req: (200, {
        "access_token": "at-" + parse_qs(req["body"])["code"][0], "token_type": "Bearer"}))
    server.route("GET", "/me", lambda req: (200, {
        "preferred_username": req["headers"]["authorization"].split("at-")[1],
        "groups": IDP_USERS[req["headers"]["authorization"].split("at-")[1]]}))
    return server


def callback_handler(code):
    state = _serialize_state({"state_id": "s", "code_verifier": "v" * 50})
    return SimpleNamespace(get_argument=lambda name, default=None: code if name == "code" else default,
                           get_state_cookie=lambda: state, request=SimpleNamespace(protocol="https", host="hub"))


@pytest.mark.asyncio
async def test_oidc_groups_and_users_really_restrict(idp):
    auth, _ = build({"mode": "oidc", "allowedUsers": ["bob"], "oidc": {
        **OAUTH, "authorizeUrl": f"{idp.url}/auth", "tokenUrl": f"{idp.url}/token", "userdataUrl": f"{idp.url}/me",
        "allowedGroups": ["ml"], "logoutRedirectUrl": "https://kc/logout"}})
    assert auth.allow_all is False and auth.scope == ["openid", "profile", "email"]
    assert auth.username_claim == "preferred_username" and auth.logout_redirect_url == "https://kc/logout"
    signed_in = {name: await auth.get_authenticated_user(callback_handler(name), None) for name in IDP_USERS}
    assert signed_in["alice"]["name"] == "alice" and signed_in["alice"]["groups"] == ["ml", "x"]
    assert signed_in["mallory"] is None  # authenticated by the issuer, but in no allowed group
    assert signed_in["bob"]["name"] == "bob"  # allowed by name


@pytest.mark.asyncio
async def test_cookie_sso_allowed_users_narrow_and_no_allow_all_elsewhere():
    sso = {"cookieName": "s", "authMeUrl": "https://sso/me", "loginUrl": "https://sso/login"}
    open_sso, _ = build({"mode": "cookie-sso", "cookieSso": sso})
    assert open_sso.allow_all is True  # the SSO decides who has a session
    narrow, _ = build({"mode": "cookie-sso", "allowedUsers": ["alice"], "cookieSso": sso})
    assert narrow.allow_all is False
    assert narrow.check_allowed("alice", {"name": "alice"}) is True
    assert narrow.check_allowed("mallory", {"name": "mallory"}) is False


def test_ldap_has_allow_all_only_when_asked():
    ldap = {"serverAddress": "ldap.example.com", "bindDnTemplates": ["uid={username},ou=people,dc=example,dc=com"]}
    grouped, _ = build({"mode": "ldap", "ldap": {**ldap, "allowedGroups": ["cn=ml,ou=groups,dc=example,dc=com"]}})
    assert grouped.allow_all is False and grouped.allowed_groups == ["cn=ml,ou=groups,dc=example,dc=com"]
    everyone, _ = build({"mode": "ldap", "allowAll": True, "ldap": ldap})
    assert everyone.allow_all is True
