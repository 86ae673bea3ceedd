"""Checks across `jhub:hub`, `jhub:auth`, `jhub:tls`, `jhub:portal` and the cluster sections.

Each returns problem lines that start with the key path; they run before any resource is registered.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .base import key_path, reveal

if TYPE_CHECKING:
    from . import Settings

# Where an image keeps what it installed: a volume mounted here would hide it.
SYSTEM_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/opt", "/proc", "/root", "/run",
               "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var")
# Each branding file travels in a ConfigMap of its own (1 MiB per object): 512 KiB leaves room to spare.
BRANDING_MAX_BYTES = 512 * 1024


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def mount_problem(mount: str, home: str) -> str | None:
    """Why mounting a volume at `mount` would hide files the image installed, or None.

    A new folder in the home directory (such as `<home>/storage`) is fine: the image ships no such folder,
    and it shows in JupyterLab's file browser. The home itself, a folder above it, or one of its hidden
    folders (`.local`, `.jupyter`, `.conda`... which images fill) would hide what the image installed."""
    if _inside(home, mount):
        return (f'"{mount}" would hide what the image installed in the home directory {home}; '
                f'use a new folder inside it, such as "{home.rstrip("/")}/storage"')
    if _inside(mount, home):
        hidden = next((part for part in mount[len(home.rstrip("/")) + 1:].split("/") if part.startswith(".")), None)
        if hidden:
            return (f'"{mount}" is inside "{hidden}", a hidden folder of the home directory where images keep '
                    f'their own settings; use a new, visible folder such as "{home.rstrip("/")}/storage"')
        return None
    for system in SYSTEM_DIRS:
        if _inside(mount, system):
            return f'"{mount}" is inside {system}, where the image keeps its own files; use a path such as /workspace/...'
    return None


def _addons(settings: "Settings") -> set[str]:
    return {a.split(":", 1)[0] for a in settings.microk8s.addons}


def check_storage(settings: "Settings") -> list[str]:
    hub, problems = settings.hub, []
    storage, shared = hub.storage, hub.shared_storage
    nodes = settings.nodes or []
    if storage.type == "local" and len(nodes) > 1 and "storage" not in hub.model_fields_set:
        problems.append(
            f'{key_path("hub", ("storage",))}: is required when {key_path("nodes")} lists {len(nodes)} nodes: '
            'the default "local" keeps files on one node\'s disk; use "shared-hostpath" (a path every node '
            'mounts, such as CephFS) or "nfs"')
    elif storage.type == "local" and len(nodes) > 1:
        problems.append(
            f'{key_path("hub", ("storage", "type"))}: "local" keeps each user\'s files on the disk of the node '
            f"their server first ran on, so with {len(nodes)} nodes a user would find their files missing on "
            'another node; use "shared-hostpath" (a path every node mounts) or "nfs"')
    if storage.type == "local" and "hostpath-storage" not in _addons(settings):
        problems.append(f'{key_path("hub", ("storage", "type"))}: "local" needs the hostpath-storage addon; '
                        f'add it to {key_path("microk8s", ("addons",))}')
    own = hub.storage_mount_path
    for where, mount in ((("storage", "mountPath"), own), (("sharedStorage", "mountPath"), shared.mount_path)):
        if where[0] == "sharedStorage" and not shared.enabled:
            continue
        problem = mount_problem(mount, hub.home_dir)
        if problem:
            problems.append(f"{key_path('hub', where)}: {problem}")
    if shared.enabled and (_inside(shared.mount_path, own) or _inside(own, shared.mount_path)):
        problems.append(f"{key_path('hub', ('sharedStorage', 'mountPath'))}: must not overlap "
                        f"{key_path('hub', ('storage', 'mountPath'))} ({own})")
    if "hostpath-storage" not in _addons(settings):
        problems.append(f'{key_path("microk8s", ("addons",))}: JupyterHub keeps its database on a volume of the '
                        'default StorageClass; add "hostpath-storage"')
    return problems


def check_spawner(settings: "Settings") -> list[str]:
    hub, problems = settings.hub, []
    if hub.grant_sudo and not hub.allow_privilege_escalation:
        problems.append(f"{key_path('hub', ('grantSudo',))}: sudo is privilege escalation; "
                        f"also set {key_path('hub', ('allowPrivilegeEscalation',))}: true to mean it")
    if hub.grant_sudo and hub.read_only_root_filesystem:
        problems.append(f"{key_path('hub', ('grantSudo',))}: cannot work with "
                        f"{key_path('hub', ('readOnlyRootFilesystem',))}: the image's start script writes to /etc "
                        "to grant sudo")
    return problems


def check_auth(settings: "Settings") -> list[str]:
    hub, auth, tls = settings.hub, settings.auth, settings.tls
    problems, mode, mine = [], auth.mode, auth.mode_settings
    where = ("auth", (auth.mode_key,))
    if mode in ("github", "azuread", "oidc") and mine.callback_url is None and not tls.enabled and not hub.public_url:
        problems.append(f"{key_path(where[0], where[1] + ('callbackUrl',))}: is required unless "
                        f"{key_path('tls', ('enabled',))} or {key_path('hub', ('publicUrl',))} gives the hub's "
                        "address (the identity provider redirects the browser there)")
    if mode in ("github", "oidc", "ldap") and not auth.allow_all:
        groups = getattr(mine, "allowed_organizations", None) or getattr(mine, "allowed_groups", None)
        if not (auth.allowed_users or hub.admin_users or groups):
            what = "allowedOrganizations" if mode == "github" else "allowedGroups"
            problems.append(f"{key_path('auth')}: mode {mode} would let nobody in: set allowedUsers, "
                            f"{auth.mode_key}.{what}, or allowAll: true")
    if auth.allow_all and mode in ("native", "azuread", "cookie-sso"):
        problems.append(f"{key_path('auth', ('allowAll',))}: not used with mode {mode}: who may sign in is "
                        + {"native": "decided by signup approval", "azuread": "decided by the tenant",
                           "cookie-sso": "decided by the SSO"}[mode])
    if mode == "native" and auth.allowed_users:
        problems.append(f"{key_path('auth', ('allowedUsers',))}: not used with mode native: NativeAuthenticator "
                        "would pre-approve these names for whoever signs up first; admins approve signups instead")
    if mode == "native":
        for name in sorted(mine.admin_passwords):
            if name not in hub.admin_users:
                problems.append(f"{key_path('auth', ('native', 'adminPasswords', name))}: \"{name}\" is not in "
                                f"{key_path('hub', ('adminUsers',))}")
    if mode == "ldap":
        problems += _check_ldap(mine)
    return problems


def _check_ldap(ldap) -> list[str]:
    at = lambda field: key_path("auth", ("ldap", field))  # noqa: E731
    problems = []
    if not ldap.bind_dn_templates and not ldap.lookup_dn:
        problems.append(f"{at('bindDnTemplates')}: set bind DN templates, or lookupDn: true with searchBase")
    if ldap.lookup_dn and not ldap.search_base:
        problems.append(f"{at('searchBase')}: is required with lookupDn: true")
    if ldap.search_user_dn and ldap.search_password is None:
        problems.append(f"{at('searchPassword')}: is required with searchUserDn "
                        "(pulumi config set --secret --path 'jhub:auth.ldap.searchPassword' <password>)")
    if ldap.search_password is not None and not ldap.search_user_dn:
        problems.append(f"{at('searchPassword')}: has no effect without searchUserDn; remove it")
    return problems


def check_tls(settings: "Settings") -> list[str]:
    tls, problems = settings.tls, []
    if tls.enabled and "ingress" not in _addons(settings):
        problems.append(f'{key_path("tls", ("enabled",))}: HTTPS is served by the MicroK8s ingress addon; add '
                        f'"ingress" to {key_path("microk8s", ("addons",))}')
    if tls.enabled and tls.certificate is not None and tls.key is not None and tls.hostname:
        problems += certificate_problems(reveal(tls.certificate), reveal(tls.key), tls.hostname)
    return problems


def _hostname_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125: a `*` stands for exactly one whole left-most label."""
    pattern, hostname = pattern.lower().rstrip("."), hostname.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = hostname.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == hostname


def certificate_problems(certificate_pem: str, key_pem: str, hostname: str, now=None) -> list[str]:
    """The first certificate of the chain must be for `hostname` (its subjectAltName: browsers ignore the CN),
    valid now, and belong to the key; else NGINX or every browser refuses it after `pulumi up`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_at, key_at = key_path("tls", ("certificate",)), key_path("tls", ("key",))
    try:
        leaf = x509.load_pem_x509_certificates(certificate_pem.encode())[0]
    except ValueError as error:
        return [f"{cert_at}: is not a readable PEM certificate ({error})"]
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        return [f"{key_at}: is not a readable, unencrypted PEM private key ({type(error).__name__})"]
    problems = []
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != \
            leaf.public_key().public_bytes(serialization.Encoding.DER, public):
        problems.append(f"{key_at}: does not belong to the certificate (the first one in {cert_at}, which must be "
                        "the server's own, followed by its chain)")
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not any(_hostname_matches(name, hostname) for name in names):
        listed = ", ".join(names) if names else "no DNS names (browsers ignore the common name)"
        problems.append(f'{cert_at}: is not valid for {key_path("tls", ("hostname",))} "{hostname}"; it names '
                        f"{listed}")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if leaf.not_valid_after_utc < now:
        problems.append(f"{cert_at}: expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    elif leaf.not_valid_before_utc > now:
        problems.append(f"{cert_at}: is not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    return problems


def check_branding_files(settings: "Settings") -> list[str]:
    """Logo and favicon files exist and are small enough for their ConfigMap."""
    branding, problems = settings.hub.branding, []
    if not settings.check_files:
        return []
    for field in ("logo", "favicon"):
        path = getattr(branding, field)
        if path is None:
            continue
        resolved = branding_path(settings.project_dir, path)
        where = key_path("hub", ("branding", field))
        if not resolved.is_file():
            problems.append(f'{where}: file "{path}" does not exist')
        elif resolved.stat().st_size > BRANDING_MAX_BYTES:
            problems.append(f'{where}: file "{path}" is larger than {BRANDING_MAX_BYTES // 1024} KiB')
    return problems


def branding_path(project_dir: Path, path: str) -> Path:
    resolved = Path(path).expanduser()
    return resolved if resolved.is_absolute() else project_dir / resolved

