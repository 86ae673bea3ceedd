"""Auth mode -> authenticator class and traits, from the validated `auth` section.

Pure: returns (authenticator_class, {ConfigurableClassName: {trait: value}}) for `configure` to apply.
Secrets never come from the values text: they are read from environment variables that the chart fills from
Kubernetes Secrets (hub.extraEnv with secretKeyRef); a missing one is a ConfigError naming the variable.
"""

import ssl

from jhub_config import ConfigError

CLASSES = {
    "native": "jhub_native.JhubNativeAuthenticator",
    "github": "oauthenticator.github.GitHubOAuthenticator",
    "azuread": "jhub_azuread.JhubAzureAdOAuthenticator",
    "oidc": "oauthenticator.generic.GenericOAuthenticator",
    "ldap": "ldapauthenticator.LDAPAuthenticator",
    "cookie-sso": "jhub_cookie_sso.CookieSSOAuthenticator",
}


def _secret(env, name: str, key: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"custom.jhub.auth.{key}: environment variable {name} is empty; "
                          "the chart must set it from a Kubernetes Secret (hub.extraEnv)")
    return value


def _oauth(section: dict, key: str, env) -> dict:
    traits = {
        "client_id": section["clientId"],
        "client_secret": _secret(env, section["clientSecretEnv"], f"{key}.clientSecretEnv"),
        "oauth_callback_url": section["callbackUrl"],
    }
    if section["loginService"]:
        traits["login_service"] = section["loginService"]
    if section["caFile"]:  # the site's CA for the identity provider (token, userinfo, org membership calls)
        traits["http_request_kwargs"] = {"ca_certs": section["caFile"]}
    return traits


def authenticator_config(auth: dict, env) -> tuple[str, dict]:
    mode = auth["mode"]
    base = {"admin_users": set(auth["adminUsers"]), "allowed_users": set(auth["allowedUsers"])}
    if auth["allowAll"]:
        base["allow_all"] = True
    classes = {"Authenticator": base}

    if mode == "native":
        native = auth["native"]
        del base["allowed_users"]  # validation refuses it: NativeAuthenticator would pre-approve those names
        classes["NativeAuthenticator"] = {
            "enable_signup": native["enableSignup"],
            "open_signup": native["openSignup"],
            "minimum_password_length": native["minimumPasswordLength"],
            "check_common_password": True,
        }
        classes["JhubNativeAuthenticator"] = {"admin_passwords_env": native["adminPasswordsEnv"]}
    elif mode == "github":
        gh = auth["github"]
        traits = _oauth(gh, "github", env)
        traits["allowed_organizations"] = set(gh["allowedOrganizations"])
        traits["github_url"] = gh["githubUrl"]
        if gh["allowedOrganizations"]:
            traits["scope"] = ["read:org"]  # private org/team membership is invisible without it
        classes["GitHubOAuthenticator"] = traits
    elif mode == "azuread":
        az = auth["azuread"]
        classes["AzureAdOAuthenticator"] = {
            **_oauth(az, "azuread", env),
            "tenant_id": az["tenantId"],
            "username_claim": az["usernameClaim"],
        }
    elif mode == "oidc":
        oidc = auth["oidc"]
        traits = {
            **_oauth(oidc, "oidc", env),
            "authorize_url": oidc["authorizeUrl"],
            "token_url": oidc["tokenUrl"],
            "userdata_url": oidc["userdataUrl"],
            "username_claim": oidc["usernameClaim"],
            "scope": list(oidc["scopes"]),
            "validate_server_cert": oidc["verifyTls"],
        }
        if oidc["logoutRedirectUrl"]:
            traits["logout_redirect_url"] = oidc["logoutRedirectUrl"]
        if oidc["allowedGroups"]:
            traits["manage_groups"] = True
            traits["auth_state_groups_key"] = f"oauth_user.{oidc['groupsClaim']}"
            traits["allowed_groups"] = set(oidc["allowedGroups"])
        classes["GenericOAuthenticator"] = traits
    elif mode == "ldap":
        ldap = auth["ldap"]
        traits = {
            "server_address": ldap["serverAddress"],
            "tls_strategy": ldap["tls"],
            "bind_dn_template": list(ldap["bindDnTemplates"]),
            "lookup_dn": ldap["lookupDn"],
            "user_attribute": ldap["userAttribute"],
            "allowed_groups": list(ldap["allowedGroups"]),
        }
        if ldap["serverPort"]:
            traits["server_port"] = ldap["serverPort"]
        if ldap["tls"] != "insecure":
            # ldap3's Tls() checks no certificate unless told to: verify, against the site's CA when given.
            tls = {"validate": ssl.CERT_REQUIRED if ldap["verifyTls"] else ssl.CERT_NONE}
            if ldap["caFile"]:
                tls["ca_certs_file"] = ldap["caFile"]
            traits["tls_kwargs"] = tls
        if ldap["lookupDn"]:
            traits["user_search_base"] = ldap["searchBase"]
            # ldapauthenticator leaves it None, and the lookup then finds no name: nobody could sign in.
            traits["lookup_dn_user_dn_attribute"] = ldap["userDnAttribute"] or ldap["userAttribute"]
            if ldap["searchUserDn"]:
                traits["lookup_dn_search_user"] = ldap["searchUserDn"]
                traits["lookup_dn_search_password"] = _secret(env, ldap["searchPasswordEnv"], "ldap.searchPasswordEnv")
        classes["LDAPAuthenticator"] = traits
    elif mode == "cookie-sso":
        sso = auth["cookieSso"]
        classes["CookieSSOAuthenticator"] = {
            "cookie_name": sso["cookieName"],
            "auth_me_url": sso["authMeUrl"],
            "login_url": sso["loginUrl"],
            "username_field": sso["usernameField"],
            "next_parameter": sso["nextParameter"],
            "timeout": float(sso["timeoutSeconds"]),
            "validate_cert": sso["verifyTls"],
            "ca_certs": sso["caFile"],
            "hub_public_url": sso["hubPublicUrl"],
            "login_service": sso["loginService"],
        }
    return CLASSES[mode], classes
