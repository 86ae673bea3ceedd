"""`jhub:auth` (+ admins from `jhub:hub`) -> `custom.jhub.auth` for `hub/jhub_auth.py`, and the hub's secret
environment: which variables come from the hub Secret, and what that Secret holds.

Secrets never enter the values: the values name an environment variable, `hub.extraEnv` fills it from a
Kubernetes Secret with `secretKeyRef`, and only the component turns the secret values into that Secret.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from ..settings.auth import AuthSettings
from ..settings.base import reveal
from ..settings.hub import HubSettings
from ..settings.portal import PortalSettings
from .chart import HUB_CA_FILE

CLIENT_SECRET_ENV = "OAUTH_CLIENT_SECRET"
LDAP_PASSWORD_ENV = "JHUB_LDAP_BIND_PASSWORD"
NATIVE_PASSWORDS_ENV = "JHUB_NATIVE_ADMIN_PASSWORDS"
PORTAL_TOKEN_ENV = "JHUB_PORTAL_TOKEN"
PORTAL_SERVICE_TOKEN_ENV = "JHUB_PORTAL_SERVICE_TOKEN"  # the portal's JupyterHub service token (OAuth secret)


def compact(value: Any) -> Any:
    """Drop None recursively: hub/jhub_config.py reads an absent key as "use the default", null as an error."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in sorted(value.items()) if v is not None}
    if isinstance(value, (list, tuple)):
        return [compact(v) for v in value]
    return value


def ca_file(auth: AuthSettings) -> Optional[str]:
    """Where the hub pod finds `jhub:auth.caCertificate` (mounted from hub.extraFiles), or None."""
    return HUB_CA_FILE if auth.ca_certificate else None


def _oauth(section, callback_url: str, ca: Optional[str]) -> dict:
    return {
        "clientId": section.client_id,
        "clientSecretEnv": CLIENT_SECRET_ENV,
        "callbackUrl": section.callback_url or callback_url,
        "loginService": section.login_service or None,
        "caFile": ca,
    }


def _mode_values(auth: AuthSettings, hub_url: str) -> dict:
    callback = f"{hub_url}/hub/oauth_callback"
    mode, m, ca = auth.mode, auth.mode_settings, ca_file(auth)
    if mode == "native":
        return {"enableSignup": m.enable_signup, "openSignup": m.open_signup,
                "minimumPasswordLength": m.minimum_password_length, "adminPasswordsEnv": NATIVE_PASSWORDS_ENV}
    if mode == "github":
        return {**_oauth(m, callback, ca), "allowedOrganizations": list(m.allowed_organizations),
                "githubUrl": m.github_url}
    if mode == "azuread":
        return {**_oauth(m, callback, ca), "tenantId": m.tenant_id, "usernameClaim": m.username_claim}
    if mode == "oidc":
        return {**_oauth(m, callback, ca), "authorizeUrl": m.authorize_url, "tokenUrl": m.token_url,
                "userdataUrl": m.userdata_url, "usernameClaim": m.username_claim, "scopes": list(m.scopes),
                "logoutRedirectUrl": m.logout_redirect_url, "allowedGroups": list(m.allowed_groups),
                "groupsClaim": m.groups_claim, "verifyTls": m.verify_tls}
    if mode == "ldap":
        return {"serverAddress": m.server_address, "serverPort": m.server_port, "tls": m.tls,
                "bindDnTemplates": list(m.bind_dn_templates), "lookupDn": m.lookup_dn,
                "searchBase": m.search_base, "searchUserDn": m.search_user_dn,
                "searchPasswordEnv": LDAP_PASSWORD_ENV, "userAttribute": m.user_attribute,
                "userDnAttribute": m.user_dn_attribute or m.user_attribute,
                "allowedGroups": list(m.allowed_groups), "verifyTls": m.verify_tls, "caFile": ca}
    return {"cookieName": m.cookie_name, "authMeUrl": m.auth_me_url, "loginUrl": m.login_url,
            "usernameField": m.username_field, "nextParameter": m.next_parameter,
            "timeoutSeconds": m.timeout_seconds, "verifyTls": m.verify_tls, "hubPublicUrl": hub_url,
            "loginService": m.login_service, "caFile": ca}


def auth_values(auth: AuthSettings, hub: HubSettings, hub_url: str) -> dict:
    """`custom.jhub.auth`. Only configured admins are admins; `allowAll` only where the config says so."""
    return compact({
        "mode": auth.mode,
        "adminUsers": list(hub.admin_users),
        "allowedUsers": list(auth.allowed_users),
        "allowAll": auth.allow_all,
        auth.mode_key: _mode_values(auth, hub_url),
    })


def admins_without_password(auth: AuthSettings, hub: HubSettings) -> list[str]:
    """Native admins with no `jhub:auth.native.adminPasswords` entry: the component generates their initial
    password (a secret stack output), so every admin can sign in on a fresh hub."""
    if auth.mode != "native":
        return []
    return sorted(set(hub.admin_users) - set(auth.mode_settings.admin_passwords))


def secret_env(auth: AuthSettings, portal: PortalSettings,
               generated_passwords: Optional[dict[str, str]] = None,
               portal_service_token: Optional[str] = None,
               portal_api_token: Optional[str] = None) -> dict[str, str]:
    """Environment variable -> secret value for the hub Secret (plain text: the caller wraps it).
    `generated_passwords`: initial passwords of the admins `admins_without_password` names.
    `portal_service_token`: the token the hub registers the portal service with (generated by the component).
    `portal_api_token`: the limits hook's token when `jhub:portal.apiToken` is not set (generated too)."""
    env: dict[str, Optional[str]] = {}
    m = auth.mode_settings
    if auth.mode in ("github", "azuread", "oidc"):
        env[CLIENT_SECRET_ENV] = reveal(m.client_secret)
    if auth.mode == "ldap" and m.search_password is not None:
        env[LDAP_PASSWORD_ENV] = reveal(m.search_password)
    passwords = {**(generated_passwords or {})} if auth.mode == "native" else {}
    if auth.mode == "native":
        passwords.update({name: reveal(secret) for name, secret in m.admin_passwords.items()})
    if passwords:
        env[NATIVE_PASSWORDS_ENV] = json.dumps(passwords, sort_keys=True)
    if portal.enabled:
        env[PORTAL_TOKEN_ENV] = reveal(portal.api_token) or portal_api_token
        env[PORTAL_SERVICE_TOKEN_ENV] = portal_service_token
    return {k: v for k, v in sorted(env.items()) if v is not None}


def extra_env(names: list[str], secret_name: str) -> dict:
    """`hub.extraEnv`: each variable read from the hub Secret by reference, never by value."""
    return {name: {"name": name, "valueFrom": {"secretKeyRef": {"key": name, "name": secret_name}}}
            for name in sorted(names)}
