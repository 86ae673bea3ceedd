"""Secret values for tests: committed stack files never hold secrets, so tests add these to the parsed
config (as `pulumi config set --secret --path` would) and mark the keys secret."""

from __future__ import annotations

import datetime
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# The host names test configs give jhub:tls.hostname.
TLS_HOSTNAMES = ("hub.lab.example", "hub.lab")


def _self_signed(names: tuple[str, ...]) -> tuple[str, str]:
    """A real certificate and key, made once per test process (jhub checks that they match and that the
    certificate covers the hostname); never committed."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


CERTIFICATE, PRIVATE_KEY = _self_signed(TLS_HOSTNAMES)
CLIENT_SECRET = "test-client-secret-3f9a77"
BIND_PASSWORD = "test-bind-password-81c2"
ADMIN_PASSWORD = "test-admin-password-5d0e"
PORTAL_TOKEN = "test-portal-token-0123456789"
ALL = (PRIVATE_KEY.split("\n")[1], CLIENT_SECRET, BIND_PASSWORD, ADMIN_PASSWORD, PORTAL_TOKEN)

_BY_MODE = {
    "github": ("clientSecret", CLIENT_SECRET),
    "azuread": ("clientSecret", CLIENT_SECRET),
    "oidc": ("clientSecret", CLIENT_SECRET),
}


def add_secrets(config: dict[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """The config with every secret its auth mode, TLS and portal need filled in, and the secret keys."""
    config, secret_keys = dict(config), set()
    auth = json.loads(config.get("jhub:auth", "{}"))
    mode = auth.get("mode", "native")
    mode_key = "cookieSso" if mode == "cookie-sso" else mode
    if mode in _BY_MODE:
        field, value = _BY_MODE[mode]
        auth.setdefault(mode_key, {})[field] = value
    if mode == "ldap" and auth.get("ldap", {}).get("searchUserDn"):
        auth["ldap"]["searchPassword"] = BIND_PASSWORD
    if mode == "native":
        admins = json.loads(config.get("jhub:hub", "{}")).get("adminUsers", [])
        auth.setdefault("native", {})["adminPasswords"] = {name: ADMIN_PASSWORD for name in admins}
    config["jhub:auth"] = json.dumps(auth)
    secret_keys.add("jhub:auth")
    tls = json.loads(config.get("jhub:tls", "{}"))
    if tls.get("enabled"):
        tls.update(certificate=CERTIFICATE, key=PRIVATE_KEY)
        config["jhub:tls"] = json.dumps(tls)
        secret_keys.add("jhub:tls")
    portal = json.loads(config.get("jhub:portal", "{}"))
    if portal.get("enabled"):
        portal["apiToken"] = PORTAL_TOKEN
        config["jhub:portal"] = json.dumps(portal)
        secret_keys.add("jhub:portal")
    return config, tuple(sorted(secret_keys))
