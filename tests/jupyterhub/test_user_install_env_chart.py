"""What a user installs lands in their persistent storage: the `singleuser.extraEnv` the program generates goes
through the real z2jh chart into the hub's spawner config, which KubeSpawner reads."""

from __future__ import annotations

import base64

import yaml

from tests.portal_deploy.deploy_support import hub_values, run_dev
from tests.support import helm


def test_the_real_chart_carries_the_user_install_env_to_the_spawner():
    run = run_dev()
    values = hub_values(run)
    env = values["singleuser"]["extraEnv"]
    assert env["PYTHONUSERBASE"].endswith("/.local") and env["CONDA_ENVS_DIRS"].endswith("/.conda/envs")
    objects = helm.render("jupyterhub-4.4.0.tgz", values, release="jupyterhub", namespace="jhub")
    hub_secret = next(o for o in helm.of_kind(objects, "Secret") if o["metadata"]["name"] == "hub")
    rendered = yaml.safe_load(base64.b64decode(hub_secret["data"]["values.yaml"]))
    assert rendered["singleuser"]["extraEnv"] == env
