"""README.md names every key of every config section, and the old jhub.env variables they replace."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from components.settings.auth import AuthSettings
from components.settings.cluster import MicroK8sSettings, Node, SshSettings
from components.settings.offline import OfflineSettings
from components.settings.base import _inner_model
from components.settings.hub import HubSettings
from components.settings.portal import PortalSettings
from components.settings.tls import TlsSettings
from tests.support.program import ROOT

DOC = (ROOT / "README.md").read_text()


def keys(model: type[BaseModel]) -> set[str]:
    found = set()
    for name, field in model.model_fields.items():
        found.add(field.alias or name)
        inner = _inner_model(field.annotation)
        if inner is not None:
            found |= keys(inner)
    return found


@pytest.mark.parametrize("model", [Node, SshSettings, MicroK8sSettings, OfflineSettings, HubSettings,
                                   AuthSettings, TlsSettings, PortalSettings],
                         ids=["nodes", "ssh", "microk8s", "offline", "hub", "auth", "tls", "portal"])
def test_every_key_is_documented(model):
    fenced = re.findall(r"```[a-z]*\n(.*?)```", DOC, flags=re.S)
    prose = re.sub(r"```[a-z]*\n.*?```", "", DOC, flags=re.S)
    code = " ".join(fenced + re.findall(r"`([^`\n]+)`", prose))  # keys are named in code
    missing = sorted(k for k in keys(model) if not re.search(rf"\b{re.escape(k)}\b", code))
    assert not missing, f"keys missing from README.md: {missing}"


@pytest.mark.parametrize("old", ["AUTH_MODE", "ADMIN_USERS_CSV", "SINGLEUSER_IMAGE", "PVC_SIZE", "ENABLE_NGINX_PROXY",
                                 "NODEPORT_FALLBACK_PORT", "SHARED_STORAGE_ENABLED", "GITHUB_CLIENT_ID",
                                 "AZUREAD_TENANT_ID", "UBILINK_AUTH_ME_URL", "UBILINK_LOGIN_URL",
                                 "GPU_RATE_PER_HOUR", "DASHBOARD_TOKEN", "USE_GPU_OPERATOR", "ENABLE_IB",
                                 "ENABLE_MPI_OPERATOR", "AZUREAD_CLIENT_SECRET", "GITHUB_CALLBACK_URL"])
def test_old_variables_are_mapped(old):
    assert f"`{old}`" in DOC
