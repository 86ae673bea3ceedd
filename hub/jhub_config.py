"""Validation of `custom.jhub`: fills defaults and reports every problem with its key path.

Each parser returns the cleaned value and records problems in `errors`; `validate` raises one ConfigError
listing them all. The schema is documented in hub/README.md and must stay in step with it.
"""

import re
from urllib.parse import urlparse

from jhub_quantity import parse_quantity

ROOT = "custom.jhub"
AUTH_MODES = ("native", "github", "azuread", "oidc", "ldap", "cookie-sso")
MODE_SECTION = {"native": "native", "github": "github", "azuread": "azuread", "oidc": "oidc", "ldap": "ldap",
                "cookie-sso": "cookieSso"}
_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
_MISSING = object()
_RESOURCE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


class ConfigError(ValueError):
    """A bad `custom.jhub`; the message names every bad key."""


def _req(value, path, errors, what):
    if value is _MISSING or value is None or value == "":
        errors.append(f"{path}: required ({what})")
        return True
    return False


def boolean(default):
    def parse(value, path, errors):
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            errors.append(f"{path}: must be true or false, not {value!r}")
        return value
    return parse


def number(default, minimum=0, integer=False):
    def parse(value, path, errors):
        if value is _MISSING:
            return default
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
            errors.append(f"{path}: must be {'an integer' if integer else 'a number'} >= {minimum}, not {value!r}")
        return value
    return parse


def string(default="", required=None, choices=None, pattern=None):
    def parse(value, path, errors):
        if value is _MISSING or value is None:
            if required:
                _req(_MISSING, path, errors, required)
            return default
        if not isinstance(value, str):
            errors.append(f"{path}: must be a string, not {value!r}")
        elif required and not value:
            _req(value, path, errors, required)
        elif choices and value not in choices:
            errors.append(f"{path}: must be one of {', '.join(choices)}, not {value!r}")
        elif pattern and value and not pattern.match(value):
            errors.append(f"{path}: {value!r} is not valid")
        return value
    return parse


def url(required=None, default=""):
    def parse(value, path, errors):
        value = string(default, required)(value, path, errors)
        if isinstance(value, str) and value:
            parts = urlparse(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                errors.append(f"{path}: must be an absolute http(s) URL, not {value!r}")
        return value
    return parse


def quantity(default=""):
    def parse(value, path, errors):
        value = string(default)(value, path, errors)
        if isinstance(value, str) and value:
            try:
                parse_quantity(value)
            except ValueError:
                errors.append(f"{path}: {value!r} is not a Kubernetes quantity like 20Gi")
        return value
    return parse


def list_of(item, default=(), min_items=0):
    def parse(value, path, errors):
        if value is _MISSING or value is None:
            value = list(default)
        if not isinstance(value, list):
            errors.append(f"{path}: must be a list, not {value!r}")
            return []
        if len(value) < min_items:
            errors.append(f"{path}: needs at least {min_items} item{'s' if min_items > 1 else ''}")
        return [item(v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    return parse


def str_map(value, path, errors):
    if value is _MISSING or value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        errors.append(f"{path}: must map strings to strings, not {value!r}")
        return {}
    return dict(value)


def obj(fields, check=None, optional=True):
    def parse(value, path, errors):
        if value is _MISSING or value is None:
            value = {}
        if not isinstance(value, dict):
            errors.append(f"{path}: must be a mapping, not {value!r}")
            value = {}
        for key in sorted(set(value) - set(fields)):
            errors.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(fields))})")
        out = {key: parser(value.get(key, _MISSING), f"{path}.{key}", errors) for key, parser in fields.items()}
        if check:
            check(out, path, errors)
        return out
    return parse


_SECRET_ENV = string("OAUTH_CLIENT_SECRET", pattern=re.compile(r"^[A-Z_][A-Z0-9_]*$"))
_OAUTH = {"clientId": string(required="the OAuth client id"), "clientSecretEnv": _SECRET_ENV,
          "callbackUrl": url(required="https://<hub>/hub/oauth_callback"), "loginService": string(""),
          "caFile": string("")}

AUTH_SECTIONS = {
    "native": obj({"enableSignup": boolean(True), "openSignup": boolean(False),
                   "minimumPasswordLength": number(8, minimum=1, integer=True),
                   "adminPasswordsEnv": string("JHUB_NATIVE_ADMIN_PASSWORDS")}),
    "github": obj({**_OAUTH, "allowedOrganizations": list_of(string(required="an organisation or org:team")),
                   "githubUrl": url(default="https://github.com")}),
    "azuread": obj({**_OAUTH, "tenantId": string(required="the Azure AD tenant id"),
                    "usernameClaim": string("preferred_username")}),
    "oidc": obj({**_OAUTH, "authorizeUrl": url(required="the issuer's authorize endpoint"),
                 "tokenUrl": url(required="the issuer's token endpoint"),
                 "userdataUrl": url(required="the issuer's userinfo endpoint"),
                 "usernameClaim": string("preferred_username"),
                 "scopes": list_of(string(required="a scope"), default=("openid", "profile", "email")),
                 "logoutRedirectUrl": url(), "allowedGroups": list_of(string(required="a group")),
                 "groupsClaim": string("groups"), "verifyTls": boolean(True)}),
    "ldap": obj({"serverAddress": string(required="the LDAP server host"),
                 "serverPort": number(None, minimum=1, integer=True),
                 "tls": string("before_bind", choices=("before_bind", "on_connect", "insecure")),
                 "bindDnTemplates": list_of(string(required="a DN with {username}")),
                 "lookupDn": boolean(False), "searchBase": string(""), "searchUserDn": string(""),
                 "searchPasswordEnv": string("JHUB_LDAP_BIND_PASSWORD"), "userAttribute": string("uid"),
                 "userDnAttribute": string(""), "allowedGroups": list_of(string(required="a group DN")),
                 "verifyTls": boolean(True), "caFile": string("")},
                check=lambda v, p, e: None if v["bindDnTemplates"] or (v["lookupDn"] and v["searchBase"]) else
                e.append(f"{p}: set bindDnTemplates, or lookupDn: true with searchBase")),
    "cookieSso": obj({"cookieName": string(required="the SSO session cookie's name"),
                      "authMeUrl": url(required="the SSO endpoint that returns the user as JSON"),
                      "loginUrl": url(required="the SSO login page"),
                      "usernameField": string("username"), "nextParameter": string("next"),
                      "timeoutSeconds": number(5, minimum=0.1), "verifyTls": boolean(True), "caFile": string(""),
                      "hubPublicUrl": url(), "loginService": string("SSO")}),
}


def _check_auth(auth, path, errors):
    mode = auth.get("mode")
    if mode not in AUTH_MODES:
        return
    if mode in ("github", "oidc", "ldap") and not auth["allowAll"]:
        section = auth.get(MODE_SECTION[mode]) or {}
        if not (auth["allowedUsers"] or auth["adminUsers"] or section.get("allowedOrganizations")
                or section.get("allowedGroups")):
            errors.append(f"{path}: mode {mode} lets nobody in: set allowedUsers, "
                          f"{'allowedOrganizations' if mode == 'github' else 'allowedGroups'}, or allowAll: true")
    if mode == "native" and auth["allowedUsers"]:
        errors.append(f"{path}.allowedUsers: not used with mode native (NativeAuthenticator would pre-approve "
                      "those names at signup; approve accounts instead)")
    if auth["allowAll"] and mode in ("native", "azuread", "cookie-sso"):
        errors.append(f"{path}.allowAll: not used with mode {mode} (see hub/README.md)")


def _auth(value, path, errors):
    value = value if isinstance(value, dict) else {}
    mode = value.get("mode", _MISSING)
    fields = {"mode": string(required="one of " + ", ".join(AUTH_MODES), choices=AUTH_MODES),
              "adminUsers": list_of(string(required="a username")),
              "allowedUsers": list_of(string(required="a username")),
              "allowAll": boolean(False)}
    if mode in MODE_SECTION:
        fields[MODE_SECTION[mode]] = AUTH_SECTIONS[MODE_SECTION[mode]]
    return obj(fields, check=_check_auth)(value if value else _MISSING, path, errors)


def _default_once(items, path, errors):
    if sum(1 for i in items if i.get("default")) > 1:
        errors.append(f"{path}: only one image may be the default")


def _images(value, path, errors):
    images = list_of(obj({"name": string(required="a short id like pytorch", pattern=_NAME),
                          "image": string(required="a container image like repo/name:tag"),
                          "description": string(""), "default": boolean(False)}), min_items=1)(value, path, errors)
    _default_once(images, path, errors)
    names = [i["name"] for i in images]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.append(f"{path}: image name {name!r} is used twice")
    return images


_TOLERATION = obj({"key": string(""), "operator": string("Equal", choices=("Equal", "Exists")), "value": string(""),
                   "effect": string("", choices=("", "NoSchedule", "PreferNoSchedule", "NoExecute")),
                   "tolerationSeconds": number(None, integer=True)})

def optional_number(minimum=0, integer=False):
    """A number >= minimum, or null (no limit); the default is null."""
    def parse(value, path, errors):
        if value is _MISSING or value is None:
            return None
        return number(None, minimum, integer)(value, path, errors)
    return parse


_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Per-user MPI namespaces (hub/jhub_mpi.py); userClusterRole is the ClusterRole the program registers.
MPI = obj({
    "enabled": boolean(False),
    "namespacePrefix": string("jhub-u-", pattern=re.compile(r"^[a-z]([-a-z0-9]{0,20}-)$")),
    "namespaceLabel": string("jhub.io/user-namespace", pattern=re.compile(r"^([a-z0-9.-]+/)?[A-Za-z0-9_.-]{1,63}$")),
    "serviceAccount": string("jhub-user", pattern=_K8S_NAME),
    "userClusterRole": string("", pattern=re.compile(r"^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$")),
    "quotaName": string("jhub-user-quota", pattern=_K8S_NAME),
    "quotaDefaults": obj({"cpu": optional_number(), "memoryGiB": optional_number(),
                          "gpus": optional_number(integer=True), "pods": optional_number(integer=True)}),
    "tokenSeconds": number(604800, minimum=600, integer=True),
    "apiServer": url(default="https://kubernetes.default.svc"),
    "caFile": string("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", pattern=re.compile(r"^/")),
    "mountPath": string("/etc/jhub/kube", pattern=re.compile(r"^/")),
    # The portal's pod-stopper ClusterRole, bound to its ServiceAccount in each user's namespace (all three, or
    # none: without the portal).
    "portalPodStopper": obj({
        "clusterRole": string("", pattern=re.compile(r"^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$")),
        "serviceAccount": string("", pattern=_K8S_NAME),
        "namespace": string("", pattern=_K8S_NAME),
    }, check=lambda v, p, e: e.append(f"{p}: set clusterRole, serviceAccount and namespace together, or none of "
                                      f"them (missing: {', '.join(k for k in sorted(v) if not v[k])})")
        if any(v.values()) and not all(v.values()) else None),
    # The build registry's login: `source`, the pull Secret in the hub's namespace, is copied into each user's
    # namespace as `name` and named by its ServiceAccounts ("" source: none). Names only, never the login.
    "pullSecret": obj({
        "source": string("", pattern=re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")),
        "name": string("jhub-registry-pull", pattern=_K8S_NAME),
    }),
}, check=lambda v, p, e: e.append(f"{p}.userClusterRole: required when mpi.enabled is true (the ClusterRole "
                                  "the program registers for users' namespaces)")
    if v["enabled"] and not v["userClusterRole"] else None)

SCHEMA = obj({
    "auth": _auth,
    "profiles": obj({
        "images": _images,
        "gpuResource": string("nvidia.com/gpu", pattern=_RESOURCE),
        "gpuProductLabel": string("nvidia.com/gpu.product"),
        # GPU Operator time-slicing/MPS with renameByDefault: true advertises this instead of gpuResource.
        "sharedGpuResource": string("nvidia.com/gpu.shared", pattern=_RESOURCE),
        # MIG strategy mixed: one resource per MIG profile, <prefix><g>g.<memory>gb.
        "migResourcePrefix": string("nvidia.com/mig-", pattern=re.compile(r"^[a-z0-9.-]+/[a-z0-9.-]*$")),
        # The Network Operator's RDMA shared device plugin resource; "" = never offer InfiniBand.
        "rdmaResource": string("rdma/rdma_shared_device_a", pattern=_RESOURCE),
        # true: watch nodes and pods (ClusterRole verbs get, list, watch); false: list both at each form render.
        "watch": boolean(False),
        "reserve": obj({"cpu": number(1), "memoryGiB": number(4)}),
        "cpuPresets": list_of(obj({"cpu": number(None, minimum=0.1), "memoryGiB": number(None, minimum=0.1)},
                                  check=lambda v, p, e: [e.append(f"{p}.{k}: required (a number)")
                                                         for k in ("cpu", "memoryGiB") if v[k] is None]),
                              default=({"cpu": 1, "memoryGiB": 4}, {"cpu": 2, "memoryGiB": 8},
                                       {"cpu": 4, "memoryGiB": 16}, {"cpu": 8, "memoryGiB": 32})),
        "maxGpusPerServer": number(0, integer=True),
        "nodeChoice": boolean(False),
    }),
    "spawner": obj({
        "nodeSelector": str_map,
        "tolerations": list_of(_TOLERATION),
        "allowPrivilegeEscalation": boolean(False),
        "grantSudo": boolean(False),
        "readOnlyRootFilesystem": boolean(False),
        "ephemeralStorage": obj({"request": quantity(), "limit": quantity()}),
        "namedServers": obj({"enabled": boolean(False), "limit": number(0, integer=True)}),
        "homeDir": string("/home/jovyan", pattern=re.compile(r"^/")),
        "notebookDir": string("", pattern=re.compile(r"^/")),
        "defaultUrl": string("", pattern=re.compile(r"^/")),
    }, check=lambda v, p, e: e.append(f"{p}.grantSudo: needs allowPrivilegeEscalation: true (sudo escalates)")
        if v["grantSudo"] and not v["allowPrivilegeEscalation"] else None),
    "portal": obj({
        "enabled": boolean(False),
        "url": url(),
        "tokenEnv": string("JHUB_PORTAL_TOKEN", pattern=re.compile(r"^[A-Z_][A-Z0-9_]*$")),
        "failOpen": boolean(False),
        "timeoutSeconds": number(5, minimum=0.1),
        "verifyTls": boolean(True),
        "caFile": string(""),
        # The portal as a JupyterHub service (sign-in through the hub); registered when oauthRedirectUri is set.
        "service": obj({
            "name": string("portal", pattern=_NAME),
            "oauthClientId": string("service-portal", pattern=re.compile(r"^service-[a-z0-9._-]+$")),
            "oauthRedirectUri": url(),
            "tokenEnv": string("JHUB_PORTAL_SERVICE_TOKEN", pattern=re.compile(r"^[A-Z_][A-Z0-9_]*$")),
            # idle-GPU reclaim (jhub:portal.gpu.reclaim): the service may stop users' servers (scope servers)
            "stopServers": boolean(False),
        }),
        # The user's notices (idle GPUs, reclaim) as a banner on the hub's pages (jhub_notices.py).
        "notices": obj({
            "enabled": boolean(True),
            "refreshSeconds": number(60, minimum=1),
            "timeoutSeconds": number(2, minimum=0.1),
        }),
    }, check=lambda v, p, e: e.append(f"{p}.url: required when portal.enabled is true")
        if v["enabled"] and not v["url"] else None),
    "mpi": MPI,
    "branding": obj({
        "title": string("JupyterHub"),
        "logoFile": string(""),
        "faviconFile": string(""),
        "announcement": string(""),
        "loginAnnouncement": string(""),
        "signInText": string(""),
    }),
})


def validate(cfg) -> dict:
    """The cleaned config with every default filled in; raises ConfigError naming each bad key."""
    errors = []
    if cfg is None:
        errors.append(f"{ROOT}: missing (the chart values must carry custom.jhub)")
        cfg = {}
    cleaned = SCHEMA(cfg, ROOT, errors)
    if errors:
        raise ConfigError("invalid hub config:\n  " + "\n  ".join(errors))
    return cleaned
