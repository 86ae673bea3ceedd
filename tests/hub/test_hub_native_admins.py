"""Native admins whose configured names have capitals get their account and sign in, in a real hub."""

import json
import re
from urllib.parse import urlencode

import pytest

from hubtest_configs import jhub_cfg
from hubtest_hub import Hub, header

PROBE = "probe-token-0123456789abcdef0123"
BEFORE = f"""
c.JupyterHub.services = [{{"name": "probe", "api_token": {PROBE!r}}}]
c.JupyterHub.load_roles = [{{"name": "probe", "scopes": ["read:users"], "services": ["probe"]}}]
"""


def sign_in(hub: Hub, username: str, password: str) -> tuple[int, list]:
    """The login form as a browser sends it: the _xsrf cookie and field from GET /hub/login, then POST."""
    status, headers, body = hub.request("GET", "/hub/login")
    assert status == 200
    cookies = "; ".join(c.split(";", 1)[0] for c in header(headers, "Set-Cookie"))
    xsrf = re.search(rb'name="_xsrf" value="([^"]+)"', body).group(1).decode()
    form = urlencode({"_xsrf": xsrf, "username": username, "password": password})
    status, headers, _ = hub.request("POST", "/hub/login", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookies})
    return status, headers


@pytest.fixture
def hub(tmp_path):
    cfg = jhub_cfg(auth={"mode": "native", "adminUsers": ["Alice.Smith", "admin"]})
    env = {"JHUB_NATIVE_ADMIN_PASSWORDS": json.dumps({"Alice.Smith": "Alice-Initial-Pw-42"})}
    running = Hub(tmp_path, cfg, env=env, before=BEFORE)
    yield running
    running.stop()


def test_admin_with_capitals_gets_an_account_and_signs_in(hub):
    for typed in ("Alice.Smith", "alice.smith"):
        status, headers = sign_in(hub, typed, "Alice-Initial-Pw-42")
        assert status == 302, f"{typed}: {status}\n{hub.log()[-3000:]}"
        assert any(c.startswith("jupyterhub-session-id=") or c.startswith("jupyterhub-hub-login=")
                   for c in header(headers, "Set-Cookie"))
    status, _, body = hub.request("GET", "/hub/api/users/alice.smith", headers={"Authorization": f"token {PROBE}"})
    assert status == 200 and json.loads(body)["admin"] is True
    assert "created admin account alice.smith" in hub.log()


def test_nobody_signs_up_with_an_admin_name_in_other_capitals(hub):
    status, headers, body = hub.request("GET", "/hub/signup")
    cookies = "; ".join(c.split(";", 1)[0] for c in header(headers, "Set-Cookie"))
    xsrf = re.search(rb'name="_xsrf" value="([^"]+)"', body).group(1).decode()
    form = urlencode({"_xsrf": xsrf, "username": "ALICE.SMITH", "signup_password": "Attacker-Pw-9999",
                      "signup_password_confirmation": "Attacker-Pw-9999"})
    hub.request("POST", "/hub/signup", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookies})
    assert sign_in(hub, "alice.smith", "Attacker-Pw-9999")[0] != 302
    assert sign_in(hub, "alice.smith", "Alice-Initial-Pw-42")[0] == 302
