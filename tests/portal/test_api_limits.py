"""GET /api/limits/{user} as the hub's pre-spawn hook calls it, and admins editing limits (audited)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from portal_api_support import ADMIN_TOKEN, HUB_TOKEN

pytest_plugins = ["conftest_api"]

ALICE = {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0, "budgetMonthly": None}


def test_the_hub_gets_exactly_the_contract(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    assert admin.put("/api/limits/alice", json=ALICE).status_code == 200
    # 12.5 GPU-hours this month: one GPU for 10 h (closed), and one still running for 2.5 h
    portal.add_session("alice", start=portal.now - timedelta(hours=20), end=portal.now - timedelta(hours=10))
    portal.add_session("alice", start=portal.now - timedelta(hours=2.5))
    portal.add_session("bob", start=portal.now - timedelta(hours=5))  # someone else's use is not counted
    reply = portal.client(token=HUB_TOKEN).get("/api/limits/alice")
    assert reply.status_code == 200
    assert reply.json() == {"user": "alice", "default": False,
                            "limits": {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0,
                                       "budgetMonthly": None},
                            "used": {"gpuHoursThisMonth": 12.5, "costThisMonth": 50.0},
                            "remaining": {"gpuHours": 87.5, "budget": None}, "over": {"gpuHours": 0.0, "cost": 0.0},
                            "currency": "USD", "pricesPerHour": {"gpu": 4.0, "cpuCore": 0.0, "memoryGiB": 0.0}}


def test_a_user_without_limits_of_their_own_is_unlimited_by_default(portal):
    reply = portal.client(token=HUB_TOKEN).get("/api/limits/newcomer")
    assert reply.json() == {"user": "newcomer", "default": True,
                            "limits": {"cpu": None, "memoryGiB": None, "gpus": None, "gpuHoursMonthly": None,
                                       "budgetMonthly": None},
                            "used": {"gpuHoursThisMonth": 0.0, "costThisMonth": 0.0},
                            "remaining": {"gpuHours": None, "budget": None}, "over": {"gpuHours": 0.0, "cost": 0.0},
                            "currency": "USD", "pricesPerHour": {"gpu": 4.0, "cpuCore": 0.0, "memoryGiB": 0.0}}


def test_users_past_a_budget_show_the_overrun_in_hours_and_money(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    admin.put("/api/limits/alice", json={**ALICE, "gpuHoursMonthly": 10.0})
    admin.put("/api/limits/bob", json={**ALICE, "gpuHoursMonthly": None, "budgetMonthly": 30.0})
    portal.add_session("alice", start=portal.now - timedelta(hours=30), end=portal.now - timedelta(hours=5))
    portal.add_session("bob", start=portal.now - timedelta(hours=10), end=portal.now, gpus=2)
    alice, bob = (admin.get(f"/api/limits/{u}").json() for u in ("alice", "bob"))
    assert alice["remaining"]["gpuHours"] == 0.0 and alice["over"] == {"gpuHours": 15.0, "cost": 60.0}  # 4 per hour
    assert bob["used"]["costThisMonth"] == 80.0 and bob["remaining"]["budget"] == 0.0
    assert bob["over"] == {"gpuHours": 0.0, "cost": 50.0}


def test_the_answer_carries_todays_prices_for_the_hub_and_the_schema_says_so(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    for change in ({"gpu_model": "", "gpu_hour": 4.0, "cpu_core_hour": 0.5, "memory_gib_hour": 0.25},
                   {"gpu_model": "NVIDIA-H100-80GB-HBM3", "gpu_hour": 9.0, "cpu_core_hour": 7.0}):
        assert admin.post("/api/rates", json=change).status_code == 200
    # the highest GPU-hour price over models; CPU and memory as a CPU-only server pays them (the default rates)
    prices = {"gpu": 9.0, "cpuCore": 0.5, "memoryGiB": 0.25}
    assert portal.client(token=HUB_TOKEN).get("/api/limits/alice").json()["pricesPerHour"] == prices
    assert {u["user"]: u["pricesPerHour"] for u in admin.get("/api/limits").json()["users"]} == {}  # nobody known
    portal.add_session("alice", start=portal.now - timedelta(hours=1))
    assert [u["pricesPerHour"] for u in admin.get("/api/limits").json()["users"]] == [prices]
    schemas = admin.get("/api/openapi.json").json()["components"]["schemas"]
    report = schemas["LimitsReport"]
    assert {"currency", "pricesPerHour", "remaining", "over"} <= set(report["required"])
    assert set(schemas["Remaining"]["properties"]) == {"gpuHours", "budget"}
    assert "refuses" in schemas["Remaining"]["properties"]["budget"]["description"]
    assert set(schemas["Over"]["properties"]) == {"gpuHours", "cost"}
    assert set(schemas["PricesPerHour"]["required"]) == {"gpu", "cpuCore", "memoryGiB"}


def test_last_months_use_does_not_count(portal):
    portal.client(token=ADMIN_TOKEN).put("/api/limits/alice", json=ALICE)
    portal.add_session("alice", start=portal.now - timedelta(days=40), end=portal.now - timedelta(days=39))
    assert portal.client(token=HUB_TOKEN).get("/api/limits/alice").json()["remaining"]["gpuHours"] == 100.0


def test_users_see_their_own_limits_only(portal):
    alice = portal.client("alice")
    assert alice.get("/api/limits/alice").status_code == 200
    assert alice.get("/api/limits/bob").status_code == 403
    assert alice.get("/api/limits").status_code == 403


def test_admin_edits_are_audited_and_can_be_undone(portal):
    admin = portal.client("root", admin=True)
    csrf = {"X-CSRF-Token": portal.csrf(admin)}
    first = admin.put("/api/limits/alice", json=ALICE, headers=csrf)
    assert first.json()["limits"] == ALICE
    second = admin.put("/api/limits/alice", json={**ALICE, "gpus": None}, headers=csrf)
    assert second.json()["limits"]["gpus"] is None
    assert admin.get("/api/limits").json()["users"][0]["user"] == "alice"
    reset = admin.delete("/api/limits/alice", headers=csrf)
    assert reset.json()["limits"] == {"cpu": None, "memoryGiB": None, "gpus": None, "gpuHoursMonthly": None,
                                      "budgetMonthly": None}
    assert admin.delete("/api/limits/alice", headers=csrf).status_code == 404
    log = portal.audit()
    assert [(e["actor"], e["action"], e["target"]) for e in log] == [
        ("root", "limits.update", "alice"), ("root", "limits.update", "alice"), ("root", "limits.reset", "alice")]
    assert log[0]["detail"] == {"before": None, "after": ALICE, "result": "ok"}
    assert log[1]["detail"]["before"] == ALICE and log[1]["detail"]["after"]["gpus"] is None
    assert log[0]["at"] == portal.now


@pytest.mark.parametrize("body", [
    {"cpu": -1, "memoryGiB": 1, "gpus": 1, "gpuHoursMonthly": 1},
    {"cpu": "lots", "memoryGiB": 1, "gpus": 1, "gpuHoursMonthly": 1},
    {"cpu": 1, "memoryGiB": 1, "gpus": 1.5, "gpuHoursMonthly": 1},
    {"cpu": 1, "memoryGiB": 1, "gpus": 1},
    {"cpu": 1, "memoryGiB": 1, "gpus": 1, "gpuHoursMonthly": 1, "admin": True},
    [], "x", None,
])
def test_bad_bodies_are_refused_with_a_reason(portal, body):
    admin = portal.client(token=ADMIN_TOKEN)
    reply = admin.put("/api/limits/alice", json=body)
    assert reply.status_code == 422
    assert reply.json()["detail"]
    assert portal.audit() == []


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"1e309", b"-Infinity"])
def test_numbers_that_are_not_numbers_are_refused(portal, number):
    admin = portal.client(token=ADMIN_TOKEN)
    body = b'{"cpu": %s, "memoryGiB": 1, "gpus": 1, "gpuHoursMonthly": 1}' % number
    reply = admin.put("/api/limits/alice", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 422


@pytest.mark.parametrize("name", ["a" * 256])
def test_impossible_user_names_are_refused(portal, name):
    assert portal.client(token=HUB_TOKEN).get(f"/api/limits/{name}").status_code == 422


def test_unusual_user_names_work(portal):
    admin = portal.client(token=ADMIN_TOKEN)
    for name in ("Alice.B@example.org", "用户", "o'brien"):
        assert admin.put(f"/api/limits/{name}", json=ALICE).status_code == 200
        assert admin.get(f"/api/limits/{name}").json()["user"] == name


def test_the_list_of_every_users_limits_costs_the_same_few_statements_for_any_number_of_users(portal):
    import sqlalchemy as sa

    admin = portal.client(token=ADMIN_TOKEN)
    statements: list[str] = []
    sa.event.listen(portal.engine, "before_cursor_execute", lambda c, cur, st, *a: statements.append(st))

    def listing_statements(users: int) -> tuple[int, list[dict]]:
        for i in range(users):
            portal.add_session(f"user{i:02d}", start=portal.now - timedelta(hours=3),
                               end=portal.now - timedelta(hours=1))
        admin.put("/api/limits/user00", json=ALICE)
        statements.clear()
        reply = admin.get("/api/limits").json()["users"]
        return len(statements), reply

    few, _ = listing_statements(3)
    many, users = listing_statements(30)
    assert many == few <= 6  # not one query (or two) per user
    assert len(users) == 30 and users[0] == {"user": "user00", "default": False, "limits": ALICE,
                                             "used": {"gpuHoursThisMonth": 4.0, "costThisMonth": 16.0},
                                             "remaining": {"gpuHours": 96.0, "budget": None},
                                             "over": {"gpuHours": 0.0, "cost": 0.0}, "currency": "USD",
                                             "pricesPerHour": {"gpu": 4.0, "cpuCore": 0.0, "memoryGiB": 0.0}}
    assert users[1]["limits"]["gpus"] is None and users[1]["used"]["gpuHoursThisMonth"] == 4.0
