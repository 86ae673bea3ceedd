"""LDAP sign-in against a real OpenLDAP server (Debian's slapd), with the authenticator and traits that
configure() sets from `custom.jhub.auth.ldap`: bind DN templates, DN lookup (OpenLDAP and Active Directory
style), allowed groups, and the search account's password from the hub's environment."""

import pytest
from traitlets import import_item
from traitlets.config import Config

import hubtest_slapd as ldap
import jhub_setup
from hubtest_configs import jhub_cfg

if ldap.missing():
    pytest.skip(f"no real LDAP server: {ldap.missing()}", allow_module_level=True)

BIND_ENV = {"JHUB_LDAP_BIND_PASSWORD": ldap.PASSWORDS["reader"]}


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    server = ldap.Slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.stop()


def authenticator(server, **fields):
    section = {"serverAddress": "127.0.0.1", "serverPort": server.port, "tls": "insecure", **fields}
    auth = {"mode": "ldap", "adminUsers": ["root"], "ldap": section}
    allowed = section.pop("allowedUsers", None)
    if allowed:
        auth["allowedUsers"] = allowed
    c = Config()
    jhub_setup.configure(c, jhub_cfg(auth=auth), env=BIND_ENV)
    return import_item(c.JupyterHub.authenticator_class)(config=c)


async def sign_in(auth, username, password=None):
    """What JupyterHub's login handler gets: the user model, or None when refused."""
    password = ldap.PASSWORDS.get(username.lower(), "") if password is None else password
    got = await auth.get_authenticated_user(None, {"username": username, "password": password})
    return got and got["name"]


LOOKUP = {"lookupDn": True, "searchBase": ldap.PEOPLE, "searchUserDn": ldap.READER_DN,
          "searchPasswordEnv": "JHUB_LDAP_BIND_PASSWORD"}


@pytest.mark.asyncio
async def test_bind_dn_template_with_allowed_groups(slapd):
    auth = authenticator(slapd, bindDnTemplates=[f"uid={{username}},{ldap.PEOPLE}"], allowedGroups=[ldap.GPU_GROUP])
    assert await sign_in(auth, "alice") == "alice"
    assert await sign_in(auth, "alice", "wrong-password") is None
    assert await sign_in(auth, "bob") is None, "bob's password is right, but he is in no allowed group"
    assert await sign_in(auth, "carol") is None, "no uid=carol entry: her DN is not what the template builds"
    by_name = authenticator(slapd, bindDnTemplates=[f"uid={{username}},{ldap.PEOPLE}"],
                            allowedGroups=[ldap.GPU_GROUP], allowedUsers=["bob"])
    assert await sign_in(by_name, "bob") == "bob"


@pytest.mark.asyncio
async def test_lookup_dn_finds_entries_a_template_cannot_build(slapd):
    auth = authenticator(slapd, **LOOKUP, allowedGroups=[ldap.GPU_GROUP])
    assert auth.lookup_dn_user_dn_attribute == "uid", "defaults to userAttribute"
    assert await sign_in(auth, "carol") == "carol"  # cn=Carol Chen: found by uid, bound with that DN
    assert await sign_in(auth, "alice") == "alice"
    assert await sign_in(auth, "carol", ldap.PASSWORDS["alice"]) is None
    assert await sign_in(auth, "bob") is None, "not in an allowed group"
    assert await sign_in(auth, "nobody", "x") is None


@pytest.mark.asyncio
async def test_lookup_dn_active_directory_style(slapd):
    """AD: users type their sAMAccountName (matched case-insensitively); the entry's DN is looked up."""
    auth = authenticator(slapd, **LOOKUP, userAttribute="sAMAccountName", userDnAttribute="sAMAccountName",
                         allowedGroups=[ldap.GPU_GROUP])
    assert await sign_in(auth, "cchen", ldap.PASSWORDS["carol"]) == "cchen"
    assert await sign_in(auth, "cchen", "wrong-password") is None


@pytest.mark.asyncio
async def test_user_dn_attribute_fills_the_bind_template(slapd):
    auth = authenticator(slapd, **LOOKUP, userDnAttribute="cn", bindDnTemplates=[f"cn={{username}},{ldap.PEOPLE}"],
                         allowedGroups=[ldap.GPU_GROUP])
    assert auth.lookup_dn_user_dn_attribute == "cn"
    assert await sign_in(auth, "carol") == "carol"  # uid carol -> cn "Carol Chen" -> cn=Carol Chen,ou=people


@pytest.mark.asyncio
async def test_search_account_password_comes_from_the_environment(slapd):
    c = Config()
    cfg = jhub_cfg(auth={"mode": "ldap", "allowAll": True, "ldap": {
        "serverAddress": "127.0.0.1", "serverPort": slapd.port, "tls": "insecure", **LOOKUP}})
    jhub_setup.configure(c, cfg, env={"JHUB_LDAP_BIND_PASSWORD": "not-the-password"})
    auth = import_item(c.JupyterHub.authenticator_class)(config=c)
    assert await sign_in(auth, "alice") is None, "the search account cannot bind, so nobody is found"
