"""TLS certificates near expiry: the `kubernetes.io/tls` Secrets of the hub's namespace (the hub's ingress
certificate, jhub:tls), read with `cryptography`. Only names and dates are shown, never the Secret's data."""

from __future__ import annotations

import base64
import datetime

from .report import Section

WARN_DAYS = 30


def check(cluster, namespace: str, now: datetime.datetime, warn_days: int = WARN_DAYS) -> Section:
    from cryptography import x509

    section = Section("certificates")
    for secret in sorted(cluster.tls_secrets(namespace), key=lambda s: s["metadata"]["name"]):
        name = f"{namespace}/{secret['metadata']['name']}"
        try:
            pem = base64.b64decode((secret.get("data") or {}).get("tls.crt", ""))
            cert = x509.load_pem_x509_certificates(pem)[0]
        except (ValueError, IndexError):
            section.problem(f"certificate {name}: tls.crt is not a PEM certificate",
                            "pulumi config set --secret --path 'jhub:tls.certificate' < fullchain.pem; pulumi up")
            continue
        expires = cert.not_valid_after_utc
        days = (expires - now).days
        subject = ", ".join(a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)) or "?"
        section.data[name] = {"subject": subject, "notAfter": expires.isoformat(), "daysLeft": days}
        line = f"{name}: CN={subject}, expires {expires:%Y-%m-%d} ({days} days)"
        if days < warn_days:
            what = "has expired" if days < 0 else f"expires in {days} days"
            section.problem(f"certificate {name} (CN={subject}) {what}",
                            "pulumi config set --secret --path 'jhub:tls.certificate' < fullchain.pem; "
                            "pulumi config set --secret --path 'jhub:tls.key' < privkey.pem; pulumi up")
        else:
            section.say(line)
    if not section.data and not section.problems:
        section.say(f"no TLS secrets in {namespace} (jhub:tls.enabled: false)")
    return section
