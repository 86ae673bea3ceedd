"""`jhub:tls`: HTTPS for the hub with a certificate the site already has, working with no internet.

HTTPS is served by the MicroK8s `ingress` addon (NGINX on ports 80/443 of every node) from an Ingress and
a TLS Secret: no ACME, no download. The plain NodePort (`jhub:hub.nodePort`) stays available. The
certificate (with its chain) and the key are secrets:

    pulumi config set --secret --path 'jhub:tls.certificate' < fullchain.pem
    pulumi config set --secret --path 'jhub:tls.key' < privkey.pem
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import Field, ValidationInfo, field_validator

from .base import Secret, StrictModel, secrets_known
from .validators import HOSTNAME_RE, k8s_namespace

CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----")
KEY_RE = re.compile(r"-----BEGIN ((RSA|EC|ENCRYPTED) )?PRIVATE KEY-----\s+[A-Za-z0-9+/=\s]+"
                    r"-----END ((RSA|EC|ENCRYPTED) )?PRIVATE KEY-----")


def _needed(value, info: ValidationInfo, secret: bool = False):
    if secret and not secrets_known(info):
        return None  # read without the stack's secrets (the bundler): nothing to check
    if value is None and info.data.get("enabled"):
        raise ValueError("is required when jhub:tls.enabled is true")
    return value


class TlsSettings(StrictModel):
    enabled: bool = False
    hostname: Optional[str] = Field(default=None, validate_default=True)
    certificate: Optional[Secret] = Field(default=None, validate_default=True)
    key: Optional[Secret] = Field(default=None, validate_default=True)
    ingress_class: str = "public"  # the class the MicroK8s ingress addon serves
    max_body_size: str = "0"  # nginx client_max_body_size; "0": no limit, uploads of any size

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        value = _needed(value, info)
        if value is not None and (not HOSTNAME_RE.match(value) or "." not in value and value != "localhost"):
            raise ValueError(f'must be the DNS name users type, such as "hub.example.org", got "{value}"')
        return None if value is None else value.lower()

    @field_validator("certificate")
    @classmethod
    def _certificate(cls, value: Optional[Secret], info: ValidationInfo) -> Optional[Secret]:
        value = _needed(value, info, secret=True)
        if value is not None and not CERT_RE.search(value.get_secret_value()):
            raise ValueError("must be a PEM certificate (-----BEGIN CERTIFICATE-----), with its chain")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: Optional[Secret], info: ValidationInfo) -> Optional[Secret]:
        value = _needed(value, info, secret=True)
        text = "" if value is None else value.get_secret_value()
        if value is not None and not KEY_RE.search(text):
            raise ValueError("must be a PEM private key (-----BEGIN PRIVATE KEY-----)")
        if "ENCRYPTED" in text:
            raise ValueError("must not be encrypted with a passphrase: NGINX cannot ask for it")
        return value

    @field_validator("ingress_class")
    @classmethod
    def _class(cls, value: str) -> str:
        return k8s_namespace(value)

    @field_validator("max_body_size")
    @classmethod
    def _body(cls, value: str) -> str:
        if not re.match(r"^[0-9]+[kKmMgG]?$", value):
            raise ValueError(f'must be an NGINX size such as "0" (no limit), "512m" or "10g", got "{value}"')
        return value
