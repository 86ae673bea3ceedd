"""Configs for the hub tests: one per auth mode and storage type, built into settings and chart values the
way the component builds them (same builders, same hub/ sources), with test secrets."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml

from components.jupyterhub.auth_values import admins_without_password, secret_env
from components.jupyterhub.hub_files import read_branding, read_hub_sources
from components.jupyterhub.urls import hub_url
from components.jupyterhub.values import ValuesInput, chart_values
from components.settings import ConfigSource, Settings, load_settings
from tests.support.program import ROOT
from tests.support.secrets_for_tests import add_secrets

# ../shared/ beside the repository (CI and the main checkout); JHUB_SHARED_DIR points elsewhere (worktrees).
SHARED = Path(os.environ.get("JHUB_SHARED_DIR") or ROOT.parent / "shared") / "schemas"
SCHEMA = SHARED / "z2jh-4.4.0.values.schema.json"
DEFAULTS = SHARED / "z2jh-4.4.0.values.yaml"

ONE_NODE = [{"name": "gpu01", "host": "10.0.0.1", "role": "control-plane"}]
THREE_NODES = ONE_NODE + [{"name": "gpu02", "host": "10.0.0.2"}, {"name": "gpu03", "host": "10.0.0.3"}]

AUTH = {
    "native": {"mode": "native"},
    "github": {"mode": "github", "github": {"clientId": "gh-id", "allowedOrganizations": ["lab-org"]}},
    "azuread": {"mode": "azuread", "azuread": {"clientId": "az-id", "tenantId": "0000-tenant"}},
    "oidc": {"mode": "oidc", "allowedUsers": ["alice"], "oidc": {
        "clientId": "jupyterhub", "authorizeUrl": "https://sso.lab/auth", "tokenUrl": "https://sso.lab/token",
        "userdataUrl": "https://sso.lab/userinfo", "logoutRedirectUrl": "https://sso.lab/logout",
        "allowedGroups": ["gpu-users"]}},
    "ldap": {"mode": "ldap", "ldap": {"serverAddress": "ldap.lab", "lookupDn": True, "searchBase": "ou=people,dc=lab",
                                      "searchUserDn": "cn=reader,dc=lab", "allowedGroups": ["cn=gpu,dc=lab"]}},
    "cookie-sso": {"mode": "cookie-sso", "cookieSso": {"cookieName": "lab_session", "authMeUrl": "https://sso.lab/api/me",
                                                       "loginUrl": "https://sso.lab/login"}},
}
STORAGE = {
    "local": {"type": "local", "size": "20Gi"},
    "shared-hostpath": {"type": "shared-hostpath", "hostPath": "/kubeflow_cephfs/jhub_storage"},
    "nfs": {"type": "nfs", "server": "10.0.0.50", "path": "/exports/jhub"},
}


def config(*, nodes=None, hub=None, auth=None, tls=None, portal=None, addons=None, offline=None) -> dict[str, str]:
    storage_nodes = ONE_NODE if nodes is None else nodes
    values = {
        "jhub:nodes": storage_nodes,
        "jhub:offline": offline or {"mode": "online"},
        "jhub:microk8s": {"addons": addons or ["dns", "hostpath-storage", "helm3", "rbac", "ingress"]},
        "jhub:hub": {"adminUsers": ["admin"], "publicUrl": "http://hub.lab:30080", **(hub or {})},
        "jhub:auth": auth or {"mode": "native"},
    }
    if tls is not None:
        values["jhub:tls"] = tls
    if portal is not None:
        values["jhub:portal"] = portal
    return {k: json.dumps(v) for k, v in values.items()}


def with_secrets(values: dict[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    return add_secrets(values)


def settings_of(values: dict[str, str], secret_keys=None) -> Settings:
    if secret_keys is None:
        values, secret_keys = with_secrets(values)
    return load_settings(ConfigSource(values, set(secret_keys)), stack="test", project_dir=ROOT)


def values_of(settings: Settings, hub_secret="hub-secret-x", tls_secret="tls-secret-x") -> dict:
    hub = settings.hub
    branding = read_branding(ROOT, hub.branding)
    return chart_values(ValuesInput(
        hub=hub, auth=settings.auth, tls=settings.tls, portal=settings.portal,
        control_plane=settings.control_plane.name, hub_url=hub_url(settings, settings.control_plane.host),
        hub_sources=read_hub_sources(ROOT), branding_files=branding,
        branding_config_maps=tuple(f"branding-{f.path.split('.')[0]}-x" for f in branding),
        secret_env_names=tuple(hub_env(settings)),
        hub_secret_name=hub_secret, tls_secret_name=tls_secret))


PORTAL_SERVICE_TOKEN = "test-portal-service-token-6c1d0e2f"
PORTAL_API_TOKEN = "test-portal-limits-token-4e8a1b3c"  # what the component generates without jhub:portal.apiToken
GENERATED_PASSWORD = "generated-admin-password-9b7a"


def hub_env(settings: Settings) -> dict[str, str]:
    """The hub Secret's environment as the component builds it, with test values for what it generates."""
    auth, hub = settings.auth, settings.hub
    generated = {name: GENERATED_PASSWORD for name in admins_without_password(auth, hub)}
    return secret_env(auth, settings.portal, generated, PORTAL_SERVICE_TOKEN, PORTAL_API_TOKEN)


def chart_defaults() -> dict:
    if not DEFAULTS.is_file():
        pytest.skip(f"the chart's defaults file is absent ({DEFAULTS}); it lives in ../shared/schemas/")
    return yaml.safe_load(DEFAULTS.read_text())


def chart_schema() -> dict:
    if not SCHEMA.is_file():
        pytest.skip(f"the chart's values schema is absent ({SCHEMA}); it lives in ../shared/schemas/")
    return json.loads(SCHEMA.read_text())


def merged(defaults: dict, values: dict) -> dict:
    """What Helm gives the templates: the chart's defaults with our values merged over them."""
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def all_configs() -> dict[str, dict[str, str]]:
    """Every auth mode on every storage type, plus TLS, packing, pre-pulling and shared storage variants."""
    found = {}
    for mode, auth in AUTH.items():
        for kind, storage in STORAGE.items():
            nodes = ONE_NODE if kind == "local" else THREE_NODES
            found[f"{mode}-{kind}"] = config(nodes=nodes, auth=auth, hub={"storage": storage})
    found["tls-portal-everything"] = config(
        nodes=THREE_NODES, auth=AUTH["oidc"],
        tls={"enabled": True, "hostname": "hub.lab.example"},
        portal={"enabled": True, "failOpen": True, "timeout": "3s"},
        hub={"storage": STORAGE["shared-hostpath"], "prePullImages": True,
             "images": [{"name": "pytorch", "image": "quay.io/jupyter/pytorch-notebook:cuda12-python-3.11.8",
                         "default": True},
                        {"name": "minimal", "image": "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"}],
             "sharedStorage": {"enabled": True, "type": "nfs", "server": "nfs.lab", "path": "/datasets",
                               "readOnly": True, "mountPath": "/workspace/datasets"},
             "scheduling": {"packGpuPods": True, "gpuWeight": 20}, "namedServers": {"enabled": True, "limit": 2},
             "nodeSelector": {"jhub.io/pool": "a100"},
             "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
             "readOnlyRootFilesystem": True, "ephemeralStorage": {"request": "1Gi", "limit": "50Gi"},
             "shmSize": "16Gi", "idleTimeout": "off",
             "branding": {"title": "Lab Hub", "announcement": "Hello", "signInText": "Sign in with SSO"}})
    return found


def hub_dir() -> Path:
    return ROOT / "hub"
