"""The program under mocks with the portal, secrets resolved: each random-secret step "prints" a distinct
value (the shared mocks print nothing), so tests can follow a secret from its step into the manifests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.support import program as support
from tests.support.program import ROOT, is_secret_wrapper, run_program, stack_config

PORTAL_TYPE = "jhub:portal:Portal"
HUB_TYPE = "jhub:jupyterhub:JupyterHub"
RANDOM_STEPS = ("portal-service-token", "portal-api-token", "portal-admin-token", "portal-session-secret",
                "portal-db-password")


def made_secret(name: str) -> str:
    """What the random-secret step `name` prints under these mocks: 48 hex characters, like the real one."""
    return hashlib.sha256(f"jhub-test-{name}".encode()).hexdigest()[:48]


@pytest.fixture
def secret_steps(monkeypatch):
    for name in RANDOM_STEPS:
        monkeypatch.setitem(support.FAKE_STDOUT, name, made_secret(name) + "\n")
    return made_secret


def dev_config(**portal) -> dict[str, str]:
    overrides = {}
    if portal:
        base = {"enabled": True}
        base.update(portal)
        overrides["jhub:portal"] = base
    return stack_config(ROOT / "Pulumi.dev.yaml", overrides)


def ok(run):
    assert run.error is None, f"program failed: {run.error}"
    return run


def run_dev(**portal):
    return ok(run_program(dev_config(**portal)))


def unwrap(value: Any) -> Any:
    """Inputs with Pulumi's secret wrappers replaced by what they hold."""
    if is_secret_wrapper(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def portal_children(run) -> list:
    component = next(r for r in run.registrations if r.type == PORTAL_TYPE)
    return [r for r in run.registrations if r.parent == component.urn]


def manifest_of(reg) -> dict:
    """A registered Kubernetes resource as the manifest it sends (secrets unwrapped)."""
    inputs = unwrap(reg.inputs)
    return {k: v for k, v in inputs.items() if v is not None}


def hub_values(run) -> dict:
    (release,) = run.of_type("kubernetes:helm.sh/v3:Release")
    values = unwrap(release.inputs["values"])
    return json.loads(values) if isinstance(values, str) else values
