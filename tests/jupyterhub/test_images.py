"""Every image the release runs is in offline-images/images.lock. The set is derived from the values merged
over the chart's defaults file: every `image: {name, tag}` in it, minus the parts the values switch off."""

from __future__ import annotations

import pytest
import yaml

from components.bundle.locks import load_lock
from components.jupyterhub import chart
from components.jupyterhub.offline import release_images
from components.settings.image_refs import full_image
from tests.jupyterhub.hubconfigs import all_configs, chart_defaults, merged, settings_of, values_of
from tests.support.program import ROOT

LOCK = load_lock(ROOT / "offline-images", ROOT / "charts")
LOCKED = {ref for item in LOCK.images for ref in item.refs}


def _enabled(values: dict, path: tuple) -> bool:
    """Whether the chart renders the part at `path` (a path to an `image` mapping) for these values."""
    top = path[:2]
    if top == ("proxy", "traefik") or top == ("proxy", "secretSync"):
        https = values["proxy"]["https"]
        return bool(https["enabled"] and https["type"] == "letsencrypt" and https["hosts"])
    if top == ("singleuser", "networkTools"):
        return values["singleuser"]["cloudMetadata"]["blockWithIptables"]
    if top == ("scheduling", "userScheduler"):
        return values["scheduling"]["userScheduler"]["enabled"]
    if top == ("scheduling", "userPlaceholder"):
        return values["scheduling"]["userPlaceholder"]["enabled"]
    if top == ("prePuller", "hook"):
        return values["prePuller"]["hook"]["enabled"]
    if top == ("prePuller", "pause") or top == ("prePuller", "extraImages"):
        return values["prePuller"]["hook"]["enabled"] or values["prePuller"]["continuous"]["enabled"]
    return True


def images_in(values: dict, path: tuple = ()) -> set[str]:
    found = set()
    if isinstance(values, dict):
        if isinstance(values.get("name"), str) and "tag" in values and path and (
                path[-1] == "image" or path[:2] == ("prePuller", "extraImages")):
            if _enabled_root(path):
                found.add(f"{values['name']}:{values['tag']}")
        for key, value in values.items():
            found |= images_in(value, path + (key,))
    elif isinstance(values, list):
        for value in values:
            if isinstance(value, dict) and isinstance(value.get("image"), str):
                found.add(value["image"])  # init containers and extra containers
            found |= images_in(value, path)
    return found


_ROOT_VALUES: dict = {}


def _enabled_root(path: tuple) -> bool:
    return _enabled(_ROOT_VALUES, path)


def release_image_set(values: dict) -> set[str]:
    _ROOT_VALUES.clear()
    _ROOT_VALUES.update(values)
    return {full_image(ref) for ref in images_in(values)}


CONFIGS = all_configs()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_image_the_release_runs_is_locked(name):
    settings = settings_of(CONFIGS[name])
    values = merged(chart_defaults(), values_of(settings))
    used = release_image_set(values) | {full_image(i.image) for i in settings.hub.images}
    missing = sorted(used - LOCKED)
    assert not missing, f"images the release runs but images.lock lacks: {missing}"
    registered = {ref for _, ref in release_images(settings.hub)}
    assert used == registered, "the preflight must check exactly the images the release runs"


def test_the_derivation_sees_optional_parts():
    """The derivation can fail: with packing and pre-pulling on it finds the scheduler and pause images."""
    settings = settings_of(CONFIGS["tls-portal-everything"])
    used = release_image_set(merged(chart_defaults(), values_of(settings)))
    assert "registry.k8s.io/kube-scheduler:v1.30.14" in used
    assert "registry.k8s.io/pause:3.10.1" in used
    plain = release_image_set(merged(chart_defaults(), values_of(settings_of(CONFIGS["native-local"]))))
    assert "registry.k8s.io/kube-scheduler:v1.30.14" not in plain
    assert "quay.io/jupyterhub/k8s-network-tools:4.4.0" not in plain


@pytest.mark.parametrize("attr,path", [
    ("HUB_IMAGE", ("hub", "image")),
    ("PROXY_IMAGE", ("proxy", "chp", "image")),
    ("USER_SCHEDULER_IMAGE", ("scheduling", "userScheduler", "image")),
    ("PAUSE_IMAGE", ("prePuller", "pause", "image")),
])
def test_pinned_images_match_the_chart_defaults(attr, path):
    node = chart_defaults()
    for key in path:
        node = node[key]
    assert getattr(chart, attr) == (node["name"], node["tag"])


def test_chart_archive_is_locked():
    entry = next(c for c in LOCK.charts if c.name == chart.CHART_NAME)
    assert entry.version == chart.CHART_VERSION and "jupyterhub" in entry.features
    raw = yaml.safe_load((ROOT / "charts" / "charts.lock").read_text())["charts"]
    assert any(c["name"] == "jupyterhub" and c["url"].endswith("jupyterhub-4.4.0.tgz") for c in raw)


@pytest.mark.parametrize("stack", ["Pulumi.dev.yaml", "Pulumi.airgapped.yaml"])
def test_example_stack_images_are_locked(stack):
    data = yaml.safe_load((ROOT / stack).read_text())["config"]
    for image in data["jhub:hub"]["images"]:
        assert full_image(image["image"]) in LOCKED, image
