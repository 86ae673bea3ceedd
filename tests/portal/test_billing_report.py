"""Billing over real databases: exact costs per user, month edges in the configured zone, open
sessions to now, per-GPU-model rates, rollups equal to the raw sessions, CSV, the limits contract."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from portal.billing import monthly_report, usage_report
from portal.billing.export import report_csv
from portal.billing.limits import user_limits
from portal.billing.rates import RateDefaults, effective_rates, seed_rates
from portal.collector.core import SessionRecord
from portal.collector.store import write_changes
from portal.db import make_engine
from portal.models import PodSession, User
from portal.rollups import ensure_rollups
from portal.settings import load_settings

TAIPEI = ZoneInfo("Asia/Taipei")
GIB = 1024**3
NOW = datetime(2025, 3, 10, 6, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def session(uid, user, start, end=None, *, gpus=0, model="", cpu=1.0, mem_gib=1) -> SessionRecord:
    return SessionRecord(
        pod_uid=uid, user_name=user, server_name="", namespace="jhub", pod_name=f"jupyter-{user}",
        node_name="gpu01", image="img", gpu_model=model, cpu_request=cpu, memory_request_bytes=mem_gib * GIB,
        gpu_count=gpus, rdma_count=0, storage_request_bytes=None, started_at=at(start),
        ended_at=at(end) if end else None, end_source="finished" if end else None, end_approximate=False,
        last_seen_at=at(end) if end else NOW,
    )


A100, H100 = "NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"
SESSIONS = [
    session("a1", "alice", "2025-03-01T02:00:00", "2025-03-01T05:30:00", gpus=1, model=A100, cpu=4, mem_gib=16),
    # 23:00 to 01:00 Taipei across the month edge: one hour in February, one in March
    session("a2", "alice", "2025-02-28T15:00:00", "2025-02-28T17:00:00", gpus=1, model=A100, cpu=4, mem_gib=16),
    session("b1", "bob", "2025-03-10T00:00:00", None, cpu=2, mem_gib=8),  # open: billed to NOW (6 h)
    session("c1", "carol", "2025-03-05T10:00:00", "2025-03-05T11:00:00", gpus=2, model=H100, cpu=8, mem_gib=64),
    session("d1", "dave", "2025-04-01T00:00:00", "2025-04-01T01:00:00", gpus=1),  # April: not in March
]


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request):
    url = request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
    engine = make_engine(url)
    settings = load_settings(database_url=url, cpu_rate_per_core_hour=0.1, memory_rate_per_gib_hour=0.01,
                             gpu_model_rates={H100: 9.5})
    with engine.begin() as conn:
        ensure_rollups(conn, TAIPEI)
        seed_rates(conn, settings, now=NOW)
        write_changes(conn, SESSIONS, zone=TAIPEI, now=NOW)
    yield engine, settings
    engine.dispose()


def test_monthly_report_costs_every_resource_with_model_rates(db):
    engine, settings = db
    with engine.connect() as conn:
        rows = {r.user_name: r for r in monthly_report(conn, year=2025, month=3, zone=TAIPEI, now=NOW,
                                                       defaults=RateDefaults.from_settings(settings))}
    assert sorted(rows) == ["alice", "bob", "carol"]
    alice = rows["alice"]
    assert alice.gpu_hours == pytest.approx(4.5)  # 3.5 h + the March hour of the edge session
    assert alice.gpu_cost == pytest.approx(4.5 * 4.0)
    assert alice.cpu_cost == pytest.approx(4.5 * 4 * 0.1)
    assert alice.memory_cost == pytest.approx(4.5 * 16 * 0.01)
    assert rows["bob"].runtime_hours == pytest.approx(6.0)  # open session billed to now
    assert rows["bob"].total_cost == pytest.approx(6 * 2 * 0.1 + 6 * 8 * 0.01)
    assert rows["carol"].gpu_cost == pytest.approx(2 * 9.5)  # the H100 override, not 4 USD


def test_february_gets_only_its_own_hour(db):
    engine, _ = db
    with engine.connect() as conn:
        rows = monthly_report(conn, year=2025, month=2, zone=TAIPEI, now=NOW)
    assert [(r.user_name, round(r.gpu_hours, 6)) for r in rows] == [("alice", 1.0)]


def test_partial_day_ranges_are_exact_and_rollups_match_the_raw_sessions(db):
    engine, _ = db
    with engine.connect() as conn:
        hour = usage_report(conn, start=at("2025-03-01T03:00:00"), end=at("2025-03-01T04:00:00"), zone=TAIPEI,
                            now=NOW)
        assert [(r.user_name, r.gpu_hours) for r in hour] == [("alice", pytest.approx(1.0))]
        odd = dict(start=at("2025-02-28T16:30:00"), end=at("2025-03-10T03:00:00"), now=NOW)
        with_rollups = usage_report(conn, zone=TAIPEI, **odd)
        raw = usage_report(conn, zone=ZoneInfo("UTC"), **odd)  # no UTC rollups: all from sessions
    assert [r.user_name for r in with_rollups] == [r.user_name for r in raw] == ["alice", "bob", "carol"]
    for a, b in zip(with_rollups, raw, strict=True):
        assert a.total_cost == pytest.approx(b.total_cost) and a.runtime_hours == pytest.approx(b.runtime_hours)
    assert with_rollups[0].gpu_hours == pytest.approx(0.5 + 3.5)
    assert with_rollups[1].runtime_hours == pytest.approx(3.0)  # bob's open session up to the range end


def test_rollups_rebuild_for_a_new_time_zone(db):
    engine, _ = db
    utc = ZoneInfo("UTC")
    with engine.begin() as conn:
        assert ensure_rollups(conn, utc) is True
        assert ensure_rollups(conn, utc) is False
        rows = monthly_report(conn, year=2025, month=2, zone=utc, now=NOW)
    assert [(r.user_name, r.gpu_hours) for r in rows] == [("alice", pytest.approx(2.0))]


def test_user_filter_shows_only_that_user(db):
    engine, _ = db
    with engine.connect() as conn:
        rows = monthly_report(conn, year=2025, month=3, zone=TAIPEI, now=NOW, user="bob")
    assert [r.user_name for r in rows] == ["bob"]


def test_closing_a_session_twice_counts_it_once(db):
    engine, _ = db
    again = session("a1", "alice", "2025-03-01T02:00:00", "2025-03-01T09:00:00", gpus=1, model=A100)
    with engine.begin() as conn:
        assert write_changes(conn, [again], zone=TAIPEI, now=NOW) == []
        rows = monthly_report(conn, year=2025, month=3, zone=TAIPEI, now=NOW, user="alice")
        stored = conn.execute(sa.select(PodSession.ended_at).where(PodSession.pod_uid == "a1")).scalar_one()
    assert rows[0].gpu_hours == pytest.approx(4.5) and stored == at("2025-03-01T05:30:00")


def test_rates_effective_view(db):
    engine, settings = db
    with engine.connect() as conn:
        rates = effective_rates(conn, RateDefaults.from_settings(settings))
    assert rates[""].gpu_hour == 4.0 and rates[H100].gpu_hour == 9.5 and rates[H100].cpu_core_hour == 0.1


def test_csv_is_stable_and_complete(db):
    engine, _ = db
    with engine.connect() as conn:
        rows = monthly_report(conn, year=2025, month=3, zone=TAIPEI, now=NOW)
    text = report_csv(rows)
    assert text == report_csv(list(reversed(rows)))
    lines = text.splitlines()
    assert lines[0] == ("user,runtime_hours,gpu_hours,cpu_core_hours,memory_gib_hours,gpu_cost,cpu_cost,"
                        "memory_cost,total_cost,currency")
    assert lines[1].startswith("alice,") and lines[1].endswith(",USD") and len(lines) == 4


def test_limits_contract_with_defaults_rows_and_budget(db):
    engine, _ = db
    settings = load_settings(default_cpu_limit=16, default_memory_gib_limit=64, default_gpu_limit=2,
                             default_gpu_hours_monthly=100)
    with engine.begin() as conn:
        assert user_limits(conn, user_name="alice", settings=settings, now=NOW) == {
            "user": "alice",
            "limits": {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0},
            "used": {"gpuHoursThisMonth": 4.5},
            "remaining": {"gpuHours": 95.5},
        }
        conn.execute(sa.insert(User.__table__).values(name="carol", gpu_limit=1, gpu_hours_monthly=1.5,
                                                      cpu_limit=None, memory_gib_limit=None))
        carol = user_limits(conn, user_name="carol", settings=settings, now=NOW)
    assert carol["limits"] == {"cpu": None, "memoryGiB": None, "gpus": 1, "gpuHoursMonthly": 1.5}
    assert carol["used"] == {"gpuHoursThisMonth": 2.0} and carol["remaining"] == {"gpuHours": 0.0}
