"""The values validate against the chart's own schema for every auth mode and storage type, and the hub's
own config check (hub/jhub_config.py, the code that runs in the hub pod) accepts their `custom.jhub`."""

from __future__ import annotations

import importlib
import json
import sys

import jsonschema
import pytest

from tests.jupyterhub.hubconfigs import all_configs, chart_defaults, chart_schema, hub_dir, merged, settings_of, values_of

CONFIGS = all_configs()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_values_validate_against_the_chart_schema(name):
    schema, defaults = chart_schema(), chart_defaults()
    values = values_of(settings_of(CONFIGS[name]))
    jsonschema.validate(merged(defaults, values), schema)


def test_an_unknown_key_is_caught_by_the_schema_check():
    """The check above can fail: the chart's schema refuses keys it does not know."""
    schema, defaults = chart_schema(), chart_defaults()
    values = values_of(settings_of(CONFIGS["native-local"]))
    values["singleuser"]["imagePullPolicy"] = "Always"  # the real key is singleuser.image.pullPolicy
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(merged(defaults, values), schema)


@pytest.fixture(scope="module")
def jhub_config():
    if not (hub_dir() / "jhub_config.py").is_file():
        pytest.skip("hub/jhub_config.py is absent (the hub-side Python has not landed in this checkout)")
    sys.path.insert(0, str(hub_dir()))
    try:
        yield importlib.import_module("jhub_config")
    finally:
        sys.path.remove(str(hub_dir()))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_hub_accepts_custom_jhub(jhub_config, name):
    values = values_of(settings_of(CONFIGS[name]))
    cleaned = jhub_config.validate(json.loads(json.dumps(values["custom"]["jhub"])))
    assert cleaned["auth"]["mode"] == json.loads(CONFIGS[name]["jhub:auth"])["mode"]


def test_values_are_sorted_and_deterministic():
    first = json.dumps(values_of(settings_of(CONFIGS["tls-portal-everything"])))
    second = json.dumps(values_of(settings_of(CONFIGS["tls-portal-everything"])))
    assert first == second
    assert first == json.dumps(json.loads(first), sort_keys=True), "keys must be sorted"
