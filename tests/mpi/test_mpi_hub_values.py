"""With jhub:mpi the hub's chart values stay valid, and the real z2jh chart renders the notebook's
NetworkPolicy with egress to the API server (kubectl in a terminal) and the hub config carries custom.jhub.mpi."""

from __future__ import annotations

import json

import jsonschema

from components.jupyterhub.hub_files import read_branding, read_hub_sources
from components.jupyterhub.urls import hub_url
from components.jupyterhub.values import ValuesInput, chart_values
from tests.jupyterhub.hubconfigs import ONE_NODE, chart_defaults, chart_schema, config, hub_env, merged, settings_of
from tests.support.helm import of_kind, render
from tests.support.program import ROOT


def values_with(mpi: dict) -> dict:
    values = config(nodes=ONE_NODE)
    values["jhub:mpi"] = json.dumps(mpi)
    settings = settings_of(values)
    hub = settings.hub
    return chart_values(ValuesInput(
        hub=hub, auth=settings.auth, tls=settings.tls, portal=settings.portal,
        control_plane=settings.control_plane.name, hub_url=hub_url(settings, settings.control_plane.host),
        hub_sources=read_hub_sources(ROOT), branding_files=read_branding(ROOT, hub.branding),
        secret_env_names=tuple(hub_env(settings)), hub_secret_name="hub-secret-x", mpi=settings.mpi))


def test_values_with_mpi_validate_against_the_chart_schema():
    jsonschema.validate(merged(chart_defaults(), values_with({"enabled": True})), chart_schema())


def _singleuser_policy(values):
    objects = render("jupyterhub-4.4.0.tgz", values, release="jupyterhub", namespace="jhub")
    [policy] = [p for p in of_kind(objects, "NetworkPolicy") if p["metadata"]["name"] == "singleuser"]
    return policy


def test_rendered_notebook_policy_lets_kubectl_reach_the_api_server_only_with_mpi():
    on = _singleuser_policy(values_with({"enabled": True}))
    assert {"ports": [{"port": 16443, "protocol": "TCP"}]} in on["spec"]["egress"]
    off = _singleuser_policy(values_with({"enabled": False}))
    assert not any(rule.get("ports") == [{"port": 16443, "protocol": "TCP"}] for rule in off["spec"]["egress"])
