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
    # No portal here (it is on by default): the spawns must reach the capacity check, not the limits call.
    values = values_of(settings_of(config(portal={"enabled": False})))
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


@pytest.mark.slow
def test_users_sign_in_to_the_portal_through_the_hub(tmp_path):
    """The portal is registered as a JupyterHub OAuth service by our values: a signed-in user (not an admin)
    authorizes it without a confirmation page, and the portal trades the code for the user's identity with
    its service token as the client secret. The token itself is in no value."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    from tests.jupyterhub.hubconfigs import PORTAL_SERVICE_TOKEN, hub_env
    from tests.jupyterhub.hubprocess import Browser

    settings = settings_of(config(auth={"mode": "native", "native": {"openSignup": True}}, portal={"enabled": True}))
    values = values_of(settings)
    assert PORTAL_SERVICE_TOKEN not in json.dumps(values)
    callback = values["custom"]["jhub"]["portal"]["service"]["oauthRedirectUri"]
    hub = ValuesHub(tmp_path, values, env=hub_env(settings))
    try:
        status, services = hub.api("GET", "/services")
        assert status == 200 and services["portal"]["name"] == "portal", services
        carol = Browser(hub.hub)
        carol.post_form("/hub/signup", {"username": "carol", "signup_password": "Carol-Strong-Pw-77",
                                        "signup_password_confirmation": "Carol-Strong-Pw-77"})
        assert carol.post_form("/hub/login", {"username": "carol", "password": "Carol-Strong-Pw-77"})[0] == 302
        query = urlencode({"client_id": "service-portal", "redirect_uri": callback, "response_type": "code",
                           "state": "st-123"})
        status, location, page = carol.request("GET", f"/hub/api/oauth2/authorize?{query}")
        assert status == 302, (status, page[-500:])  # no confirmation page, and carol may use the service
        assert location.startswith(callback + "?")
        granted = parse_qs(urlsplit(location).query)
        assert granted["state"] == ["st-123"]
        token_status, _, token_body = hub.hub.request("POST", "/hub/api/oauth2/token", body=urlencode({
            "client_id": "service-portal", "client_secret": PORTAL_SERVICE_TOKEN, "grant_type": "authorization_code",
            "code": granted["code"][0], "redirect_uri": callback}),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert token_status == 200, token_body
        access = json.loads(token_body)["access_token"]
        status, _, me = hub.hub.request("GET", "/hub/api/user", headers={"Authorization": f"token {access}"})
        assert status == 200 and json.loads(me)["name"] == "carol"
        wrong = hub.hub.request("POST", "/hub/api/oauth2/token", body=urlencode({
            "client_id": "service-portal", "client_secret": "not-the-token", "grant_type": "authorization_code",
            "code": granted["code"][0], "redirect_uri": callback}),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert wrong[0] in (400, 401, 403)
    finally:
        hub.stop()


@pytest.mark.slow
@pytest.mark.parametrize("reclaim", [False, True], ids=["reclaim-off", "reclaim-on"])
def test_the_portal_may_stop_servers_only_with_idle_gpu_reclaim(tmp_path, reclaim):
    """jhub:portal.gpu.reclaim grants the portal's service token the `servers` scope, through our values, in
    the real hub: it may then stop a user's server (the hub accepts: 204, nothing was running), and without
    reclaim it may not (refused for its scopes)."""
    from tests.jupyterhub.hubconfigs import PORTAL_SERVICE_TOKEN, hub_env
    from tests.jupyterhub.hubprocess import Browser

    settings = settings_of(config(auth={"mode": "native", "native": {"openSignup": True}},
                                  portal={"enabled": True, "gpu": {"reclaim": reclaim}}))
    values = values_of(settings)
    hub = ValuesHub(tmp_path, values, env=hub_env(settings))
    try:
        carol = Browser(hub.hub)
        carol.post_form("/hub/signup", {"username": "carol", "signup_password": "Carol-Strong-Pw-77",
                                        "signup_password_confirmation": "Carol-Strong-Pw-77"})
        assert carol.post_form("/hub/login", {"username": "carol", "password": "Carol-Strong-Pw-77"})[0] == 302
        auth = {"Authorization": f"token {PORTAL_SERVICE_TOKEN}"}
        status, _, me = hub.hub.request("GET", "/hub/api/user", headers=auth)
        assert status == 200, me
        scopes = set(json.loads(me)["scopes"])
        assert "read:users:name" in scopes and ("servers" in scopes) is reclaim, scopes
        status, _, body = hub.hub.request("DELETE", "/hub/api/users/carol/server", headers=auth)
        if reclaim:
            assert status == 204, (status, body)
        else:
            assert status in (403, 404), (status, body)
    finally:
        hub.stop()
