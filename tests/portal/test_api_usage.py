"""Sessions and billing over the API: users see only their own, admins anyone's; CSV export; bad query
parameters are 4xx with a reason."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from portal_api_support import ADMIN_TOKEN, problem

pytest_plugins = ["conftest_api"]


@pytest.fixture
def usage(portal):
    now = portal.now
    portal.add_session("alice", start=now - timedelta(hours=10), end=now - timedelta(hours=6), uid="a1")  # 4 GPU-h
    portal.add_session("alice", start=now - timedelta(hours=1), uid="a2")  # open: 1 GPU-h so far
    portal.add_session("bob", start=now - timedelta(hours=3), end=now - timedelta(hours=1), gpus=2, uid="b1")  # 4
    portal.add_session("bob", start=now - timedelta(days=45), end=now - timedelta(days=44), uid="b-old")
    return portal


def test_users_cannot_see_each_others_sessions(usage):
    alice = usage.client("alice")
    mine = alice.get("/api/sessions").json()
    assert {s["pod_uid"] for s in mine["sessions"]} == {"a1", "a2"} and mine["total"] == 2
    assert alice.get("/api/sessions?user=bob").status_code == 403
    assert alice.get("/api/billing?user=bob").status_code == 403
    assert alice.get("/api/billing.csv?user=bob").status_code == 403
    assert "bob" not in alice.get("/api/billing").text
    assert "bob" not in alice.get("/api/billing.csv").text
    bob = usage.client("bob")
    assert {s["pod_uid"] for s in bob.get("/api/sessions").json()["sessions"]} == {"b1"}


def test_admins_see_everyone_or_one_user(usage):
    admin = usage.client("root", admin=True)
    assert {s["pod_uid"] for s in admin.get("/api/sessions").json()["sessions"]} == {"a1", "a2", "b1"}
    assert {s["pod_uid"] for s in admin.get("/api/sessions?user=bob").json()["sessions"]} == {"b1"}
    assert admin.get("/api/sessions?month=2026-04").json()["sessions"][0]["pod_uid"] == "b-old"


def test_a_session_reads_as_it_ran(usage):
    alice = usage.client("alice").get("/api/sessions").json()
    closed = next(s for s in alice["sessions"] if s["pod_uid"] == "a1")
    assert closed["started_at"] == "2026-05-19T18:00:00+00:00" and closed["ended_at"] == "2026-05-19T22:00:00+00:00"
    assert closed["duration_seconds"] == 4 * 3600 and closed["gpus"] == 1 and closed["memory_gib"] == 16
    running = next(s for s in alice["sessions"] if s["pod_uid"] == "a2")
    assert running["open"] and running["ended_at"] is None and running["duration_seconds"] == 3600
    assert alice["sessions"][0]["pod_uid"] == "a2"  # newest first
    assert alice["start"] == "2026-04-30T16:00:00+00:00"  # May 2026 in Asia/Taipei, as UTC


def test_billing_per_user_for_the_month_and_a_range(usage):
    admin = usage.client(token=ADMIN_TOKEN)
    month = admin.get("/api/billing?month=2026-05").json()
    rows = {r["user"]: r for r in month["rows"]}
    assert rows["alice"]["gpu_hours"] == 5.0 and rows["alice"]["gpu_cost"] == 20.0  # 4 USD per GPU-hour
    assert rows["bob"]["gpu_hours"] == 4.0 and month["total_cost"] == 36.0 and month["currency"] == "USD"
    narrow = admin.get("/api/billing", params={"start": "2026-05-20T10:30:00", "end": "2026-05-20T12:00"}).json()
    assert {r["user"]: r["gpu_hours"] for r in narrow["rows"]} == {"alice": 1.0, "bob": 1.0}
    assert narrow["start"] == "2026-05-20T02:30:00+00:00"  # naive times are local (Asia/Taipei)
    utc = admin.get("/api/billing", params={"start": "2026-05-20T02:30:00Z", "end": "2026-05-20T04:00Z"}).json()
    assert utc["rows"] == narrow["rows"]


def test_billing_csv_downloads(usage):
    reply = usage.client("root", admin=True).get("/api/billing.csv?month=2026-05")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/csv")
    assert reply.headers["content-disposition"] == 'attachment; filename="billing-20260501-20260531.csv"'
    assert reply.content.startswith(b"\xef\xbb\xbfuser,")  # UTF-8 BOM: Excel reads the names as UTF-8
    rows = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"))))
    assert [(r["user"], r["gpu_hours"], r["total_cost"]) for r in rows] == [
        ("alice", "5.0000", "20.00"), ("bob", "4.0000", "16.00")]


@pytest.mark.parametrize(("query", "complaint"), [
    ("month=2026-13", "month"),
    ("month=May", "YYYY-MM"),
    ("month=1999-12", "between"),
    ("month=2026-05&start=2026-05-01", "not both"),
    ("start=2026-05-01", "go together"),
    ("start=2026-05-10&end=2026-05-01", "after start"),
    ("start=yesterday&end=2026-05-01", "start"),
    ("start=2026-05-01&end=2026-02-30", "end"),
    ("start=0001-01-01&end=2026-01-01", "years"),
    ("start=2000-01-01&end=2999-01-01", "ten years"),
    ("start=2026-05-01T00:00+25:00&end=2026-06-01", "start"),
    ("user=", "user"),
])
def test_bad_query_parameters_are_4xx_with_a_reason(usage, query, complaint):
    admin = usage.client(token=ADMIN_TOKEN)
    for path in ("/api/sessions", "/api/billing", "/api/billing.csv"):
        reply = admin.get(f"{path}?{query}")
        assert reply.status_code == 422, (path, query, reply.text)
        assert complaint in problem(reply), reply.json()


@pytest.mark.parametrize("query", ["limit=0", "limit=5000", "offset=-1", "limit=ten"])
def test_bad_paging_is_refused(usage, query):
    assert usage.client(token=ADMIN_TOKEN).get(f"/api/sessions?{query}").status_code == 422


def test_paging(usage):
    admin = usage.client(token=ADMIN_TOKEN)
    first = admin.get("/api/sessions?limit=2").json()
    second = admin.get("/api/sessions?limit=2&offset=2").json()
    assert first["total"] == 3 and len(first["sessions"]) == 2 and len(second["sessions"]) == 1


@pytest.mark.parametrize("path", ["/api/sessions?user=%00", "/api/billing?user=a%00b", "/api/billing.csv?user=%1b",
                                  "/api/limits/a%00b", "/api/audit?action=%00", "/sessions?user=%00"])
def test_control_characters_in_names_are_refused_not_crashing(usage, path):
    reply = usage.client(token=ADMIN_TOKEN).get(path)
    assert reply.status_code == 422, reply.text
