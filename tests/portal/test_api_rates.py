"""Prices through the API and the page: everyone sees them; admins change them from today or a later day
(audited); a change never reprices past days."""

from __future__ import annotations

from datetime import timedelta

import pytest
from portal_api_support import ADMIN_TOKEN

pytest_plugins = ["conftest_api"]

DEFAULT = {"gpu_model": "", "gpu_hour": 4.0, "cpu_core_hour": 0.0, "memory_gib_hour": 0.0}


def billed(portal, month: str) -> float:
    return portal.client(token=ADMIN_TOKEN).get("/api/billing", params={"month": month}).json()["total_cost"]


def test_an_admin_change_applies_from_its_day_and_is_audited(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    # alice ran a GPU for 10 h last month and runs one now since 2 h (portal.now is 2026-05-20 12:00 Taipei)
    portal.add_session("alice", start=portal.now - timedelta(days=30), end=portal.now - timedelta(days=30, hours=-10))
    portal.add_session("alice", start=portal.now - timedelta(hours=2))
    assert admin.post("/api/rates", json=DEFAULT).status_code == 200
    assert (billed(portal, "2026-04"), billed(portal, "2026-05")) == (40.0, 8.0)

    reply = admin.post("/api/rates", json={**DEFAULT, "gpu_hour": 6.0})  # from today
    assert reply.status_code == 200
    body = reply.json()
    assert body["today"] == "2026-05-20" and body["in_force"][0] == {**DEFAULT, "gpu_hour": 6.0}
    assert [(r["effective_from"], r["gpu_hour"], r["updated_by"]) for r in body["history"]] == [
        ("2026-05-20", 6.0, "token:ops")]  # the same day twice: one row, the later price
    assert billed(portal, "2026-04") == 40.0  # last month keeps its price
    assert billed(portal, "2026-05") == 12.0

    scheduled = {"gpu_model": "NVIDIA-A100-SXM4-80GB", "gpu_hour": 9.0, "effective_from": "2026-06-01"}
    body = admin.post("/api/rates", json=scheduled).json()
    assert [r for r in body["history"] if r["scheduled"]] == [{
        "gpu_model": "NVIDIA-A100-SXM4-80GB", "effective_from": "2026-06-01", "gpu_hour": 9.0, "cpu_core_hour": None,
        "memory_gib_hour": None, "updated_at": "2026-05-20T04:00:00+00:00", "updated_by": "token:ops",
        "scheduled": True}]
    assert billed(portal, "2026-05") == 12.0  # not yet
    log = [(e["action"], e["target"], e["detail"]["effective_from"], e["detail"]["after"]["gpu_hour"])
           for e in portal.audit()]
    assert log == [("rates.update", "default", "2026-05-20", 4.0), ("rates.update", "default", "2026-05-20", 6.0),
                   ("rates.update", "NVIDIA-A100-SXM4-80GB", "2026-06-01", 9.0)]


@pytest.mark.parametrize(("body", "complaint"), [
    ({**DEFAULT, "effective_from": "2026-05-19"}, "before today"),
    ({**DEFAULT, "gpu_hour": -1}, "greater than or equal"),
    ({"gpu_model": "", "gpu_hour": 5.0}, "all three prices"),
    ({**DEFAULT, "gpu_hour": "NaN"}, "finite"),
    ({**DEFAULT, "extra": 1}, "Extra inputs"),
])
def test_bad_changes_are_refused_and_nothing_is_written(portal, body, complaint):
    reply = portal.client(token=ADMIN_TOKEN).post("/api/rates", json=body)
    assert reply.status_code == 422 and complaint in reply.text
    assert portal.audit() == [] and portal.client(token=ADMIN_TOKEN).get("/api/rates").json()["history"] == []


def test_users_see_the_rates_but_cannot_change_them(portal):
    alice = portal.client("alice")
    assert alice.get("/api/rates").json()["in_force"] == [DEFAULT]  # the configured defaults
    reply = alice.post("/api/rates", json=DEFAULT, headers={"X-CSRF-Token": portal.csrf(alice)})
    assert reply.status_code == 403 and portal.audit() == []


def test_the_rates_page_shows_prices_and_takes_an_admins_change(portal):
    admin = portal.client("root", admin=True)
    form = {"gpu_model": "", "gpu_hour": "5", "cpu_core_hour": "0.1", "memory_gib_hour": "0",
            "effective_from": "2026-05-21", "csrf_token": portal.csrf(admin)}
    reply = admin.post("/rates", data=form)
    assert reply.status_code == 303 and reply.headers["location"] == "/rates"
    page = admin.get("/rates").text
    assert "2026-05-21 (scheduled)" in page and 'action="/rates"' in page
    refused = admin.post("/rates", data={**form, "effective_from": "2020-01-01"})
    assert refused.status_code == 422 and "before today" in refused.text
    user_page = portal.client("alice").get("/rates").text
    assert "2026-05-21 (scheduled)" in user_page and 'action="/rates"' not in user_page
