"""Robustness points found when the portal was tried: user names as the hub validates them, the storage
removal floor, 422 bodies in the OpenAPI's shape, HTML errors for browsers on unknown pages, and the
layering (pages use services, never routes; no import circle between the context and the live pod view)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from portal_api_support import ADMIN_TOKEN, HUB_TOKEN, problem

pytest_plugins = ["conftest_api"]
APP = Path(__file__).resolve().parents[2] / "portal" / "app"


@pytest.mark.parametrize("name", ["%2e%2e", "%2E", "%20alice", "alice%20", "a%09b", "a%7fb", "%0a"])
def test_user_names_the_hub_would_refuse_are_4xx(portal, name):
    for client in (portal.client(token=ADMIN_TOKEN), portal.client(token=HUB_TOKEN)):
        reply = client.get(f"/api/limits/{name}")
        assert 400 <= reply.status_code < 500, (name, reply.status_code, reply.text)
    admin = portal.client(token=ADMIN_TOKEN)
    body = {"cpu": 1, "memoryGiB": 1, "gpus": 1, "gpuHoursMonthly": 1}
    assert admin.put(f"/api/limits/{name}", json=body).status_code == 422
    assert admin.get(f"/api/billing?user={name}").status_code == 422
    assert portal.audit() == []


def test_an_empty_user_name_is_4xx(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    body = {"cpu": 1, "memoryGiB": 1, "gpus": 1, "gpuHoursMonthly": 1}
    assert admin.put("/api/limits/", json=body, follow_redirects=True).status_code == 405  # no user to set
    assert admin.get("/api/billing?user=").status_code == 422


def test_names_the_hub_allows_still_work(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    for name in ("alice", "a", "a.b", "...", "Alice B", "名前"):
        assert admin.get(f"/api/limits/{name}").status_code == 200, name


def test_storage_is_never_removed_sooner_than_the_minimum_idle_days(portal):
    old = portal.storage / "olduser"
    old.mkdir()
    stamp = (portal.now - timedelta(days=200)).timestamp()
    os.utime(old, (stamp, stamp))
    admin = portal.client(token=ADMIN_TOKEN)
    reply = admin.post("/api/storage/olduser/remove", json={"idle_days": 29, "confirm": "olduser", "orphan": True})
    assert reply.status_code == 422 and "PORTAL_STORAGE_MIN_IDLE_DAYS" in problem(reply) and old.is_dir()
    assert admin.get("/api/storage").json()["min_idle_days"] == 30
    reply = admin.post("/api/storage/olduser/remove", json={"idle_days": 30, "confirm": "olduser", "orphan": True})
    assert reply.status_code == 200 and not old.exists()


def test_a_minimum_above_the_automatic_removal_is_refused_at_start():
    from portal.app.settings import load_web_settings
    from portal.settings import SettingsError

    with pytest.raises(SettingsError, match="PORTAL_STORAGE_AUTO_REMOVE_IDLE_DAYS"):
        load_web_settings(api_tokens={}, storage_auto_remove_idle_days=7, hub_api_url="http://h/hub/api",
                          oauth_client_secret="x" * 32, oauth_callback_url="http://p/oauth_callback")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("get", "/api/billing?month=2026-13", None),  # a domain error (the range)
    ("get", "/api/sessions?limit=0", None),  # FastAPI's own validation
    ("put", "/api/limits/alice", {"cpu": "lots"}),
    ("post", "/api/rates", {"gpu_model": "", "gpu_hour": 1, "cpu_core_hour": 0, "memory_gib_hour": 0,
                            "effective_from": "2026-01-01"}),  # before today: refused by the service
    ("post", "/api/storage/alice/remove", {"idle_days": 1, "confirm": "alice"}),
])
def test_every_422_body_matches_the_openapi_schema(portal, method, path, body):
    admin = portal.client(token=ADMIN_TOKEN)
    document = admin.get("/api/openapi.json").json()
    schema = {"$ref": "#/components/schemas/HTTPValidationError", "components": document["components"]}
    reply = getattr(admin, method)(path, **({"json": body} if body is not None else {}))
    assert reply.status_code == 422, reply.text
    jsonschema.validate(reply.json(), schema)
    assert reply.json()["detail"] and all(e["msg"] for e in reply.json()["detail"])


def test_unknown_pages_are_html_for_browsers_and_json_for_api_clients(portal):
    anonymous = portal.client()
    page = anonymous.get("/no-such-page", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text and "Not Found" in page.text
    api = anonymous.get("/no-such-page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    under_api = anonymous.get("/api/nothing", headers={"Accept": "text/html"})
    assert under_api.status_code == 404 and under_api.json() == {"detail": "Not Found"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_pages_use_services_not_routes():
    for page in (APP / "pages").glob("*.py"):
        assert not {m for m in _imports(page) if m.startswith("portal.app.routes")}, page.name
    for service in (APP / "services").glob("*.py"):
        assert "fastapi" not in _imports(service), f"{service.name}: services raise domain errors, not HTTP"


def test_the_context_does_not_import_the_live_pod_view():
    assert not {m for m in _imports(APP / "context.py") if m.startswith("portal.app.services.live_pods")}
    code = ("import sys, portal.app.services.live_pods, portal.app.context; "
            "print('portal.app.services.live_pods' in sys.modules)")
    for first in ("portal.app.context", "portal.app.services.live_pods"):
        result = subprocess.run([sys.executable, "-c", f"import {first}; " + code], capture_output=True, text=True,
                                cwd=APP.parents[1])
        assert result.returncode == 0, result.stderr
