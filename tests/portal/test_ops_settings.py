"""The web settings are validated at start; a bad one names its environment variable and never shows
a secret. JupyterHub's service variables work as well as PORTAL_* ones."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from portal.app.settings import load_web_settings
from portal.settings import SettingsError

HUB = {"PORTAL_HUB_API_URL": "http://hub:8081/hub/api", "PORTAL_OAUTH_CLIENT_SECRET": "s3cret-client-value",
       "PORTAL_OAUTH_CALLBACK_URL": "https://portal.example/oauth_callback"}
DIGEST = hashlib.sha256(b"token").hexdigest()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("PORTAL_", "JUPYTERHUB_")):
            monkeypatch.delenv(name)


def set_env(monkeypatch, values: dict) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_hub_sign_in_from_portal_variables(monkeypatch):
    set_env(monkeypatch, HUB)
    web = load_web_settings()
    assert web.oauth_enabled and web.hub_authorize_url == "http://hub:8081/hub/api/oauth2/authorize"
    assert web.secure_cookies  # the portal is reached over https
    monkeypatch.setenv("PORTAL_HUB_PUBLIC_URL", "http://gpu01:30080/")
    assert load_web_settings().hub_authorize_url == "http://gpu01:30080/hub/api/oauth2/authorize"


def test_hub_sign_in_from_jupyterhub_service_variables(monkeypatch):
    set_env(monkeypatch, {"JUPYTERHUB_API_URL": "http://hub:8081/hub/api", "JUPYTERHUB_API_TOKEN": "x" * 32,
                          "JUPYTERHUB_CLIENT_ID": "service-usage", "JUPYTERHUB_SERVICE_NAME": "usage",
                          "JUPYTERHUB_OAUTH_CALLBACK_URL": "http://portal:29781/oauth_callback"})
    web = load_web_settings()
    assert (web.oauth_client_id, web.service_name, web.secure_cookies) == ("service-usage", "usage", False)


@pytest.mark.parametrize(("values", "complaint"), [
    ({}, "nobody can sign in"),
    ({"PORTAL_HUB_API_URL": "http://hub:8081/hub/api"}, "PORTAL_OAUTH_CLIENT_SECRET (or JUPYTERHUB_API_TOKEN)"),
    ({**HUB, "PORTAL_HUB_API_URL": "hub:8081"}, "PORTAL_HUB_API_URL: 'hub:8081' is not an http(s) URL"),
    ({**HUB, "PORTAL_OAUTH_CALLBACK_URL": "https://portal.example/callback"}, "must end in /oauth_callback"),
    ({**HUB, "PORTAL_PORT": "99999"}, "PORTAL_PORT"),
    ({**HUB, "PORTAL_SESSION_SECRET": "short"}, "PORTAL_SESSION_SECRET must be at least 32"),
    ({**HUB, "PORTAL_SESSION_SECRET_FILE": "/nonexistent/secret"}, "cannot read PORTAL_SESSION_SECRET_FILE"),
    ({**HUB, "PORTAL_API_TOKENS": '{"hub": {"role": "hub", "sha256": "abc"}}'}, "PORTAL_API_TOKENS"),
    ({**HUB, "PORTAL_API_TOKENS": json.dumps({"hub": {"role": "root", "sha256": DIGEST}})}, "PORTAL_API_TOKENS"),
    ({**HUB, "PORTAL_API_TOKENS": "not json"}, "PORTAL_API_TOKENS: not valid JSON"),
    ({**HUB, "PORTAL_STORAGE_BASE_PATH": "relative/dir"}, "PORTAL_STORAGE_BASE_PATH: 'relative/dir' must be"),
    ({**HUB, "PORTAL_STORAGE_AUTO_REMOVE_IDLE_DAYS": "0"}, "PORTAL_STORAGE_AUTO_REMOVE_IDLE_DAYS"),
    ({**HUB, "PORTAL_LOG_FORMAT": "xml"}, "PORTAL_LOG_FORMAT"),
])
def test_a_bad_setting_names_its_variable(monkeypatch, values, complaint):
    set_env(monkeypatch, values)
    with pytest.raises(SettingsError) as caught:
        load_web_settings()
    assert complaint in str(caught.value)
    assert "s3cret-client-value" not in str(caught.value)


def test_secrets_and_tokens_come_from_files(monkeypatch, tmp_path):
    (tmp_path / "session").write_text("f" * 40 + "\n")
    (tmp_path / "client").write_text("client-secret-from-file\n")
    (tmp_path / "tokens.json").write_text(json.dumps({"hub": {"role": "hub", "sha256": DIGEST.upper()}}))
    set_env(monkeypatch, {**HUB, "PORTAL_SESSION_SECRET_FILE": str(tmp_path / "session"),
                          "PORTAL_API_TOKENS_FILE": str(tmp_path / "tokens.json"),
                          "PORTAL_API_TOKENS": json.dumps({"ops": {"role": "admin", "sha256": DIGEST}})})
    monkeypatch.delenv("PORTAL_OAUTH_CLIENT_SECRET")
    monkeypatch.setenv("PORTAL_OAUTH_CLIENT_SECRET_FILE", str(tmp_path / "client"))
    web = load_web_settings()
    assert web.session_secret.get_secret_value() == "f" * 40
    assert web.oauth_client_secret.get_secret_value() == "client-secret-from-file"
    assert {name: spec.role for name, spec in web.api_tokens.items()} == {"hub": "hub", "ops": "admin"}
    assert web.api_tokens["hub"].sha256 == DIGEST
    assert "client-secret-from-file" not in repr(web) and "f" * 40 not in repr(web)


def test_a_token_set_twice_is_refused(monkeypatch, tmp_path):
    (tmp_path / "tokens.json").write_text(json.dumps({"ops": {"role": "hub", "sha256": DIGEST}}))
    set_env(monkeypatch, {**HUB, "PORTAL_API_TOKENS_FILE": str(tmp_path / "tokens.json"),
                          "PORTAL_API_TOKENS": json.dumps({"ops": {"role": "admin", "sha256": DIGEST}})})
    with pytest.raises(SettingsError, match="'ops' is set both"):
        load_web_settings()


def test_tokens_alone_are_enough_to_start(monkeypatch):
    monkeypatch.setenv("PORTAL_API_TOKENS", json.dumps({"ops": {"role": "admin", "sha256": DIGEST}}))
    assert not load_web_settings().oauth_enabled
