"""Our chart values in a real `jupyterhub` process (JupyterHub 5.5.0, KubeSpawner 7): what a user or an admin
of the running hub would notice."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("jupyterhub", reason="the hub packages of requirements/hub-test.txt are not installed")
pytest.importorskip("kubespawner", reason="the hub packages of requirements/hub-test.txt are not installed")

from tests.jupyterhub.hubconfigs import config, settings_of, values_of  # noqa: E402
from tests.jupyterhub.hubprocess import ValuesHub  # noqa: E402

ADMIN_PASSWORDS = {"JHUB_NATIVE_ADMIN_PASSWORDS": json.dumps({"admin": "Initial-Admin-Pw-42"})}


def refuse_spawns(hub: ValuesHub, times: int, then_wait: float) -> list[int]:
    """Ask for a server `times` times on a cluster with no node (every spawn is refused), then give the hub
    `then_wait` seconds to exit (JupyterHub aborts 2 s after the failure that reaches its limit). The statuses
    of the answered requests."""
    statuses = []
    assert hub.api("POST", "/users/bob")[0] == 201
    for _ in range(times):
        try:
            statuses.append(hub.api("POST", "/users/bob/server", {"profile": "cpu"})[0])
        except OSError:
            break
    deadline = time.monotonic() + then_wait
    while time.monotonic() < deadline and hub.hub.proc.poll() is None:
        time.sleep(0.2)
    return statuses


@pytest.mark.slow
@pytest.mark.parametrize("limit_from", ["our values", "the chart's default"])
def test_refused_spawns_do_not_stop_the_hub(tmp_path, limit_from):
    values = values_of(settings_of(config()))
    assert values["hub"]["consecutiveFailureLimit"] == 0
    if limit_from == "the chart's default":  # the control: the same test, without our setting, sees the hub die
        del values["hub"]["consecutiveFailureLimit"]
    hub = ValuesHub(tmp_path, values, env=ADMIN_PASSWORDS)
    try:
        statuses = refuse_spawns(hub, 7, then_wait=3 if limit_from == "our values" else 15)
        alive = hub.hub.proc.poll() is None
        log = hub.hub.log()
    finally:
        hub.stop()
    assert "No server fits right now" in log, "each spawn was refused by the capacity check"
    if limit_from == "our values":
        assert alive and len(statuses) == 7 and all(s >= 400 for s in statuses), statuses
        assert "consecutive spawn failures" not in log
    else:
        assert not alive and len(statuses) >= 5, statuses
        assert "Aborting due to 5 consecutive spawn failures" in log
