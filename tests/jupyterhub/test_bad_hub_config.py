"""Bad hub, auth, storage, TLS and portal configs stop the program before any resource is registered, with
a line that starts with the key path."""

from __future__ import annotations

import json

import pytest

from components.settings import ConfigError
from tests.jupyterhub.hubconfigs import AUTH, ONE_NODE, THREE_NODES, config
from tests.support.program import run_program, assert_refused
from tests.support.secrets_for_tests import CERTIFICATE, PRIVATE_KEY, _self_signed

OTHER_CERTIFICATE, OTHER_KEY = _self_signed(("other.example",))

OIDC = AUTH["oidc"]["oidc"]


def with_auth(auth: dict, **kw):
    return config(auth=auth, **kw)


# (id, config, secret keys, expected key path, expected words)
CASES = [
    ("auth-mode-unknown", with_auth({"mode": "ubilink"}), (), "jhub:auth.mode:", '"cookie-sso"'),
    ("auth-mode-object-missing-fields", with_auth({"mode": "github"}), ("jhub:auth",),
     "jhub:auth.github.clientId:", "is required"),
    ("auth-client-secret-missing", with_auth({"mode": "azuread", "azuread": {"clientId": "x", "tenantId": "t"}}),
     ("jhub:auth",), "jhub:auth.azuread.clientSecret:", "is required"),
    ("auth-client-secret-not-secret", with_auth({"mode": "github", "github": {
        "clientId": "x", "clientSecret": "plain", "allowedOrganizations": ["o"]}}), (),
     "jhub:auth.github.clientSecret:", "--secret"),
    ("auth-other-mode-object", with_auth({"mode": "native", "github": {"clientId": "x"}}), (),
     "jhub:auth.github:", 'only used with mode "github"'),
    ("auth-oidc-url", with_auth({"mode": "oidc", "oidc": {**OIDC, "clientSecret": "s", "tokenUrl": "sso/token"}}),
     ("jhub:auth",), "jhub:auth.oidc.tokenUrl:", "http(s) URL"),
    ("auth-oidc-typo", with_auth({"mode": "oidc", "oidc": {**OIDC, "clientSecret": "s", "userInfoUrl": "https://x"}}),
     ("jhub:auth",), "jhub:auth.oidc.userInfoUrl:", "unknown key"),
    ("auth-github-nobody-allowed", config(hub={"adminUsers": []}, auth={"mode": "github", "github": {
        "clientId": "x", "clientSecret": "s"}}), ("jhub:auth",), "jhub:auth:", "let nobody in"),
    ("auth-allow-all-native", with_auth({"mode": "native", "allowAll": True}), (),
     "jhub:auth.allowAll:", "not used with mode native"),
    ("auth-native-allowed-users", with_auth({"mode": "native", "allowedUsers": ["bob"]}), (),
     "jhub:auth.allowedUsers:", "signs up first"),
    ("auth-ldap-no-dn", with_auth({"mode": "ldap", "ldap": {"serverAddress": "ldap"}}), (),
     "jhub:auth.ldap.bindDnTemplates:", "lookupDn"),
    ("auth-ldap-template", with_auth({"mode": "ldap", "ldap": {"serverAddress": "l", "bindDnTemplates": ["uid=x"]}}),
     (), "jhub:auth.ldap.bindDnTemplates:", "{username}"),
    ("auth-ldap-search-password", with_auth({"mode": "ldap", "allowedUsers": ["a"], "ldap": {
        "serverAddress": "l", "lookupDn": True, "searchBase": "dc=x", "searchUserDn": "cn=r"}}), (),
     "jhub:auth.ldap.searchPassword:", "is required"),
    ("auth-ldap-tls", with_auth({"mode": "ldap", "ldap": {"serverAddress": "l", "tls": "starttls",
                                                          "bindDnTemplates": ["uid={username}"]}}), (),
     "jhub:auth.ldap.tls:", '"before_bind"'),
    ("auth-cookie-hub-cookie", with_auth({"mode": "cookie-sso", "cookieSso": {
        "cookieName": "jupyterhub-hub-login", "authMeUrl": "https://s/me", "loginUrl": "https://s/login"}}), (),
     "jhub:auth.cookieSso.cookieName:", "hub's own cookies"),
    ("auth-cookie-login-url", with_auth({"mode": "cookie-sso", "cookieSso": {
        "cookieName": "sso", "authMeUrl": "https://s/me", "loginUrl": "/login"}}), (),
     "jhub:auth.cookieSso.loginUrl:", "absolute"),
    ("auth-native-password-not-admin", with_auth({"mode": "native", "native": {"adminPasswords": {"eve": "x"}}}),
     ("jhub:auth",), "jhub:auth.native.adminPasswords.eve:", "not in jhub:hub.adminUsers"),
    ("auth-native-password-twice", with_auth({"mode": "native", "native": {"adminPasswords": {
        "Admin": "x", "admin": "y"}}}), ("jhub:auth",), "jhub:auth.native.adminPasswords:", "twice"),
    ("auth-ca-is-a-path", with_auth({"mode": "native", "caCertificate": "/etc/ssl/lab-ca.pem"}), (),
     "jhub:auth.caCertificate:", "PEM text"),
    ("auth-ca-broken", with_auth({"mode": "native", "caCertificate": "-----BEGIN CERTIFICATE-----\nMIIBfake\n"
                                                                     "-----END CERTIFICATE-----\n"}), (),
     "jhub:auth.caCertificate:", "not a readable PEM certificate"),
    ("auth-oauth-needs-url", config(hub={"publicUrl": None}, auth={"mode": "oidc", "allowedUsers": ["a"],
                                                                   "oidc": {**OIDC, "clientSecret": "s"}}),
     ("jhub:auth",), "jhub:auth.oidc.callbackUrl:", "jhub:tls.enabled"),
    ("storage-type", config(hub={"storage": {"type": "hostpath"}}), (), "jhub:hub.storage.type:", '"nfs"'),
    ("storage-local-multinode", config(nodes=THREE_NODES, hub={"storage": {"type": "local"}}), (),
     "jhub:hub.storage.type:", "another node"),
    ("storage-missing-multinode", config(nodes=THREE_NODES), (), "jhub:hub.storage:", "is required"),
    ("storage-hostpath-missing", config(hub={"storage": {"type": "shared-hostpath"}}), (),
     "jhub:hub.storage.hostPath:", "is required"),
    ("storage-nfs-server", config(hub={"storage": {"type": "nfs", "path": "/x"}}), (),
     "jhub:hub.storage.server:", "is required"),
    ("storage-field-of-other-type", config(hub={"storage": {"type": "local", "server": "nfs"}}), (),
     "jhub:hub.storage.server:", 'only used with type "nfs"'),
    ("storage-relative-path", config(hub={"storage": {"type": "shared-hostpath", "hostPath": "data"}}), (),
     "jhub:hub.storage.hostPath:", "absolute"),
    ("storage-hides-home", config(hub={"storage": {"type": "local", "mountPath": "/home/jovyan"}}), (),
     "jhub:hub.storage.mountPath:", "hide"),
    ("storage-hides-all-homes", config(hub={"storage": {"type": "local", "mountPath": "/home"}}), (),
     "jhub:hub.storage.mountPath:", "hide"),
    ("storage-in-hidden-home-folder", config(hub={"storage": {"type": "local", "mountPath": "/home/jovyan/.local/data"}}),
     (), "jhub:hub.storage.mountPath:", 'inside ".local"'),
    ("shared-storage-hides-home", config(hub={"sharedStorage": {"enabled": True, "hostPath": "/d",
                                                                "mountPath": "/home/jovyan"}}), (),
     "jhub:hub.sharedStorage.mountPath:", "hide"),
    ("hub-home-relative", config(hub={"homeDir": "jovyan"}), (), "jhub:hub.homeDir:", "absolute"),
    ("storage-hides-conda", config(hub={"storage": {"type": "local", "mountPath": "/opt/conda/data"}}), (),
     "jhub:hub.storage.mountPath:", "/opt"),
    ("storage-size", config(hub={"storage": {"type": "local", "size": "10 GB"}}), (),
     "jhub:hub.storage.size:", "quantity"),
    ("storage-local-needs-addon", config(addons=["dns", "helm3", "rbac"]), (),
     "jhub:hub.storage.type:", "hostpath-storage"),
    ("shared-storage-path", config(hub={"sharedStorage": {"enabled": True}}), (),
     "jhub:hub.sharedStorage.hostPath:", "is required"),
    ("shared-storage-overlap", config(hub={"sharedStorage": {"enabled": True, "hostPath": "/d",
                                                             "mountPath": "/home/jovyan/storage/shared"}}), (),
     "jhub:hub.sharedStorage.mountPath:", "overlap"),
    ("hub-node-port", config(hub={"nodePort": 8080}), (), "jhub:hub.nodePort:", "at least 30000"),
    ("hub-image-untagged", config(hub={"images": [{"name": "py", "image": "myorg/pytorch"}]}), (),
     "jhub:hub.images[0].image:", "tag"),
    ("hub-image-latest", config(hub={"images": [{"name": "py", "image": "myorg/pytorch:latest"}]}), (),
     "jhub:hub.images[0].image:", "latest"),
    ("hub-two-defaults", config(hub={"images": [{"name": "a", "image": "x/a:1", "default": True},
                                                {"name": "b", "image": "x/b:1", "default": True}]}), (),
     "jhub:hub.images:", "only one"),
    ("hub-idle-timeout", config(hub={"idleTimeout": "1 week"}), (), "jhub:hub.idleTimeout:", "duration"),
    ("hub-sudo-needs-escalation", config(hub={"grantSudo": True}), (), "jhub:hub.grantSudo:",
     "allowPrivilegeEscalation"),
    ("hub-sudo-read-only-root", config(hub={"grantSudo": True, "allowPrivilegeEscalation": True,
                                            "readOnlyRootFilesystem": True}), (), "jhub:hub.grantSudo:", "/etc"),
    ("hub-unknown-key", config(hub={"adminUser": ["a"]}), (), "jhub:hub.adminUser:", 'did you mean "adminUsers"'),
    ("hub-branding-logo-missing", config(hub={"branding": {"logo": "branding/nope.png"}}), (),
     "jhub:hub.branding.logo:", "does not exist"),
    ("tls-needs-hostname", config(tls={"enabled": True, "certificate": CERTIFICATE, "key": PRIVATE_KEY}),
     ("jhub:tls",), "jhub:tls.hostname:", "is required"),
    ("tls-needs-ingress", config(addons=["dns", "hostpath-storage"], tls={
        "enabled": True, "hostname": "hub.lab", "certificate": CERTIFICATE, "key": PRIVATE_KEY}),
     ("jhub:tls",), "jhub:tls.enabled:", '"ingress"'),
    ("tls-key-not-secret", config(tls={"enabled": True, "hostname": "hub.lab", "certificate": CERTIFICATE,
                                       "key": PRIVATE_KEY}), (), "jhub:tls.key:", "--secret"),
    ("tls-cert-is-a-path", config(tls={"enabled": True, "hostname": "hub.lab", "certificate": "fullchain.pem",
                                       "key": PRIVATE_KEY}), ("jhub:tls",), "jhub:tls.certificate:", "PEM"),
    ("tls-key-missing", config(tls={"enabled": True, "hostname": "hub.lab", "certificate": CERTIFICATE}),
     ("jhub:tls",), "jhub:tls.key:", "is required"),
    ("tls-key-of-another-certificate", config(tls={"enabled": True, "hostname": "hub.lab.example",
                                                  "certificate": CERTIFICATE, "key": OTHER_KEY}),
     ("jhub:tls",), "jhub:tls.key:", "does not belong to the certificate"),
    ("tls-certificate-for-another-host", config(tls={"enabled": True, "hostname": "hub.lab.example",
                                                    "certificate": OTHER_CERTIFICATE, "key": OTHER_KEY}),
     ("jhub:tls",), "jhub:tls.certificate:", 'is not valid for jhub:tls.hostname "hub.lab.example"'),
    # apiToken is optional (generated when unset); a configured one must be long enough.
    ("portal-token-short", config(portal={"enabled": True, "apiToken": "short"}), ("jhub:portal",),
     "jhub:portal.apiToken:", "at least 16 characters"),
    ("portal-database-url", config(portal={"databaseUrl": "mysql://u:hunter2@db/portal"}), ("jhub:portal",),
     "jhub:portal.databaseUrl:", "postgresql+psycopg://"),
    ("portal-database-size", config(portal={"database": {"size": "lots"}}), (), "jhub:portal.database.size:",
     "quantity"),
    ("portal-timezone", config(portal={"timezone": "Taipei"}), (), "jhub:portal.timezone:", "IANA"),
    ("portal-rates", config(portal={"rates": {"gpuHour": -1}}), (), "jhub:portal.rates.gpuHour:", "at least 0"),
    ("portal-timeout", config(portal={"timeout": "5 minutes"}), (), "jhub:portal.timeout:", "duration"),
]


@pytest.mark.parametrize("values,secret_keys,where,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_hub_config_names_the_key_and_registers_nothing(values, secret_keys, where, words):
    assert_refused(values, secret_keys, where, words)


def test_secret_values_never_appear_in_hub_config_errors():
    values = config(tls={"enabled": True, "hostname": "hub.lab", "certificate": "hunter2-cert",
                         "key": "hunter2-key"}, auth={"mode": "github", "github": {"clientId": 5}})
    run = run_program(values, secret_keys=("jhub:tls", "jhub:auth"))
    assert isinstance(run.error, ConfigError)
    assert "hunter2" not in str(run.error)


def test_a_value_under_a_secret_looking_key_is_hidden_in_errors():
    """`adminPasswords.alice` ends in a user name, not in "password": the value is hidden all the same."""
    values = config(auth={"mode": "native", "native": {"adminPasswords": {"admin": 31415926535}}})
    run = run_program(values, secret_keys=("jhub:auth",))
    assert isinstance(run.error, ConfigError)
    assert "jhub:auth.native.adminPasswords.admin: must be a string" in str(run.error)
    assert "31415926535" not in str(run.error)


def test_a_good_config_registers_the_hub():
    """The cases above fail for their own reason: the same helper without the mistake goes through."""
    values = config(nodes=ONE_NODE, auth={"mode": "native"})
    run = run_program(values)
    assert run.error is None, run.error
    assert run.of_type("kubernetes:helm.sh/v3:Release")
    assert json.loads(values["jhub:hub"])["adminUsers"] == ["admin"]


def test_certificate_checks_wildcards_and_validity_dates():
    import datetime

    from components.settings.hub_checks import certificate_problems

    wildcard, key = _self_signed(("*.lab.example",))
    assert certificate_problems(wildcard, key, "hub.lab.example") == []
    assert certificate_problems(wildcard, key, "HUB.lab.example") == []
    deeper = certificate_problems(wildcard, key, "a.hub.lab.example")
    assert len(deeper) == 1 and "is not valid for" in deeper[0], "a wildcard covers one label only"
    assert "is not valid for" in certificate_problems(wildcard, key, "lab.example")[0]
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365)
    assert certificate_problems(CERTIFICATE, PRIVATE_KEY, "hub.lab", now=later)[0].startswith(
        "jhub:tls.certificate: expired on ")
    assert certificate_problems(CERTIFICATE, PRIVATE_KEY, "hub.lab") == []
