"""Kubernetes refuses any Secret or ConfigMap over 1 MiB, and `pulumi up` then fails half-way. The chart copies
the values into its hub Secret (`values.yaml`, plus `hub.extraFiles` a second time) and Helm stores the release
(chart, values, rendered manifest) in a Secret of its own. These tests measure those objects, from the values,
with the largest branding the config accepts."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
import yaml

from components.jupyterhub import manifests
from components.jupyterhub.hub_files import read_branding
from components.settings import ConfigError
from components.settings.hub_checks import BRANDING_MAX_BYTES
from tests.jupyterhub.hubconfigs import AUTH, THREE_NODES, chart_defaults, config, merged, settings_of, values_of
from tests.support.program import ROOT

MIB = 1024 * 1024
# The chart's own part of Helm's release Secret (templates, files, default values and schema as Helm encodes
# them: JSON, gzip, base64). Measured for chart 4.4.0: 222,668 bytes; rounded up.
CHART_IN_RELEASE = 240 * 1024
# The rendered manifest besides the hub Secret (Deployments, ConfigMap with the chart's jupyterhub_config.py,
# RBAC, Services...): measured about 95 KiB of YAML for the largest config; rounded up.
OTHER_MANIFEST = 128 * 1024


def biggest_config(tmp_path):
    logo, icon = tmp_path / "logo.png", tmp_path / "favicon.ico"
    logo.write_bytes(bytes(range(256)) * (BRANDING_MAX_BYTES // 256))  # exactly the limit, incompressible-ish
    icon.write_bytes(bytes(reversed(range(256))) * (BRANDING_MAX_BYTES // 256))
    return config(nodes=THREE_NODES, auth=AUTH["oidc"],
                  tls={"enabled": True, "hostname": "hub.lab.example"}, portal={"enabled": True},
                  hub={"storage": {"type": "shared-hostpath", "hostPath": "/srv/users"}, "branding": {
                      "title": "Lab Hub", "logo": str(logo), "favicon": str(icon),
                      "announcement": "x" * 2000, "loginAnnouncement": "y" * 2000}})


def hub_secret_bytes(values: dict) -> int:
    """The chart's hub Secret, decoded: values.yaml (its defaults merged with ours), each extraFiles entry,
    and three generated keys (proxy token, cookie secret, crypt keeper keys: under 1 KiB together)."""
    everything = merged(chart_defaults(), values)
    everything["Chart"] = {"Name": "jupyterhub", "Version": "4.4.0", "AppVersion": "5.5.0"}
    everything["Release"] = {"Name": "jupyterhub", "Namespace": "jhub", "Service": "Helm"}
    total = len(yaml.safe_dump(everything).encode())
    for entry in values["hub"].get("extraFiles", {}).values():
        total += len(base64.b64decode(entry["binaryData"])) if "binaryData" in entry else len(entry["stringData"].encode())
    return total + 1024


def release_secret_estimate(values: dict) -> int:
    """Helm's release Secret, on the safe side: base64(gzip(JSON of chart, values and manifest)). The manifest
    carries the hub Secret base64-encoded, which gzip brings back to about its decoded size; the rest of the
    manifest is counted uncompressed. (Measured with helm 4 and the real chart: 356 KiB for this config.)"""
    ours = gzip.compress(json.dumps(values).encode(), 9)
    return CHART_IN_RELEASE + 4 * (len(ours) + hub_secret_bytes(values) + OTHER_MANIFEST) // 3


def test_largest_branding_keeps_every_object_far_below_one_mib(tmp_path):
    settings = settings_of(biggest_config(tmp_path))
    # settings_of ran every check of the config: this is the largest branding it accepts
    values = values_of(settings)
    assert len(json.dumps(values)) < 256 * 1024, "the values stay small, whatever the branding"
    assert hub_secret_bytes(values) < MIB // 2
    assert release_secret_estimate(values) < MIB - 128 * 1024
    for item in read_branding(ROOT, settings.hub.branding):
        config_map = manifests.branding_config_map("jhub", item)
        data = sum(len(base64.b64decode(v)) for v in config_map["binaryData"].values())
        assert data == BRANDING_MAX_BYTES and data + 64 < MIB, item.path


def test_one_byte_more_is_refused(tmp_path):
    big = tmp_path / "logo.png"
    big.write_bytes(b"\0" * (BRANDING_MAX_BYTES + 1))
    with pytest.raises(ConfigError) as refused:  # the settings' own checks refuse it, before any resource
        settings_of(config(hub={"branding": {"logo": str(big)}}))
    assert refused.value.problems == [
        f'jhub:hub.branding.logo: file "{big}" is larger than {BRANDING_MAX_BYTES // 1024} KiB']
