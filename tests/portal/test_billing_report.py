"""Billing over real databases: exact costs per user, month edges in the configured zone, open
sessions to now, per-GPU-model rates, rollups equal to the raw sessions, CSV, the limits contract."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from portal.billing import month_bounds, monthly_report, usage_report
from portal.billing.export import report_csv
from portal.billing.limits import user_limits
from portal.billing.rates import RateDefaults, apply_configured_rates, effective_rates, seed_rates, set_rate
from portal.collector.core import SessionRecord
from portal.collector.store import write_changes
from portal.db import make_engine
from portal.models import AuditLog, PodSession, Rate, User
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
        alice = user_limits(conn, user_name="alice", settings=settings, now=NOW)
        assert alice == {
            "user": "alice", "default": True,
            "limits": {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0, "budgetMonthly": None},
            "used": {"gpuHoursThisMonth": 4.5, "costThisMonth": alice["used"]["costThisMonth"]},
            "remaining": {"gpuHours": 95.5, "budget": None}, "over": {"gpuHours": 0.0, "cost": 0.0},
            # today's prices, for the hub's check that a server adds cost: the dearest GPU model's GPU hour
            "currency": "USD", "pricesPerHour": {"gpu": 9.5, "cpuCore": 0.1, "memoryGiB": 0.01},
        }
        conn.execute(sa.insert(User.__table__).values(name="carol", gpu_limit=1, gpu_hours_monthly=1.5,
                                                      cpu_limit=None, memory_gib_limit=None))
        carol = user_limits(conn, user_name="carol", settings=settings, now=NOW)
    assert carol["limits"] == {"cpu": None, "memoryGiB": None, "gpus": 1, "gpuHoursMonthly": 1.5,
                               "budgetMonthly": None}
    assert carol["used"]["gpuHoursThisMonth"] == 2.0 and carol["remaining"] == {"gpuHours": 0.0, "budget": None}
    assert carol["default"] is False and carol["over"]["gpuHours"] == 0.5


# -- rates over time ---------------------------------------------------------------------------------------
def prices_of(conn) -> dict[tuple[str, str], float | None]:
    rows = conn.execute(sa.select(Rate.gpu_model, Rate.effective_from, Rate.gpu_hour)).all()
    return {(model, day.isoformat()): price for model, day, price in rows}


def test_changed_settings_apply_from_the_day_of_the_start_and_past_months_keep_their_prices(db):
    engine, settings = db
    april = datetime(2025, 4, 10, 2, 0, tzinfo=UTC)  # 10:00 in Taipei: the portal restarts with new rates
    changed = settings.model_copy(update={"gpu_rate_per_hour": 5.0, "gpu_model_rates": {}})
    with engine.begin() as conn:
        assert apply_configured_rates(conn, changed, now=april) == ["", H100]
        assert apply_configured_rates(conn, changed, now=april) == []  # the same settings again: nothing
        assert prices_of(conn) == {("", "1970-01-01"): 4.0, (H100, "1970-01-01"): 9.5,
                                   ("", "2025-04-10"): 5.0, (H100, "2025-04-10"): None}
        march = {r.user_name: r for r in monthly_report(conn, year=2025, month=3, zone=TAIPEI, now=april)}
        write_changes(conn, [session("c2", "carol", "2025-04-10T03:00:00", "2025-04-10T04:00:00", gpus=2,
                                     model=H100)], zone=TAIPEI, now=april)
        [carol] = monthly_report(conn, year=2025, month=4, zone=TAIPEI, now=april, user="carol")
        log = conn.execute(sa.select(AuditLog.actor, AuditLog.action, AuditLog.target)
                           .where(AuditLog.at == april)).all()
    assert march["alice"].gpu_cost == pytest.approx(4.5 * 4.0)  # March keeps 4 USD ...
    assert march["carol"].gpu_cost == pytest.approx(2 * 9.5)  # ... and the H100 price of March
    assert carol.gpu_cost == pytest.approx(2 * 5.0)  # from April 10 the H100 has no price of its own
    assert sorted(log) == [("system:settings", "rates.update", "NVIDIA-H100-80GB-HBM3"),
                           ("system:settings", "rates.update", "default")]


def test_a_restart_with_the_same_settings_keeps_an_admins_change(db):
    engine, settings = db
    with engine.begin() as conn:
        set_rate(conn, gpu_model="", prices={"gpu_hour": 6.0, "cpu_core_hour": 0.1, "memory_gib_hour": 0.01},
                 effective_from=date(2025, 3, 10), actor="admin", now=NOW)
        assert apply_configured_rates(conn, settings, now=NOW) == []
        assert effective_rates(conn, RateDefaults.from_settings(settings))[""].gpu_hour == 6.0


def test_a_price_change_inside_a_report_splits_sessions_and_rollup_days_by_the_day(db):
    engine, settings = db
    with engine.begin() as conn:  # from March 5 (Taipei) a GPU-hour costs 8 USD
        set_rate(conn, gpu_model="", prices={"gpu_hour": 8.0, "cpu_core_hour": 0.1, "memory_gib_hour": 0.01},
                 effective_from=date(2025, 3, 5), actor="admin", now=NOW)
        # 22:00 March 4 to 02:00 March 5 Taipei: two hours at each price
        write_changes(conn, [session("e1", "erin", "2025-03-04T14:00:00", "2025-03-04T18:00:00", gpus=1),
                             session("f1", "frank", "2025-03-04T14:00:00", None, gpus=1)], zone=TAIPEI, now=NOW)
        rows = {r.user_name: r for r in monthly_report(conn, year=2025, month=3, zone=TAIPEI, now=NOW,
                                                       defaults=RateDefaults.from_settings(settings))}
        # "ROC" is Taipei's time under another name: no rollups are kept for it, so every session is read
        raw = {r.user_name: r for r in monthly_report(conn, year=2025, month=3, zone=ZoneInfo("ROC"), now=NOW)}
    assert rows["erin"].gpu_cost == pytest.approx(2 * 4.0 + 2 * 8.0)
    assert rows["alice"].gpu_cost == pytest.approx(4.5 * 4.0)  # all of it before March 5
    assert rows["carol"].gpu_cost == pytest.approx(2 * 9.5)  # the H100 row is older than the change: still 9.5
    hours = (NOW - at("2025-03-04T16:00:00")).total_seconds() / 3600  # frank's open session, from March 5
    assert rows["frank"].gpu_cost == pytest.approx(2 * 4.0 + hours * 8.0)
    for user, row in rows.items():  # without rollups: the same split
        assert raw[user].total_cost == pytest.approx(row.total_cost), user


@pytest.mark.parametrize(("zone_name", "month"), [("Europe/Berlin", 3), ("Europe/Berlin", 10),
                                                  ("America/Sao_Paulo", 11)])
def test_rollups_equal_the_raw_sessions_in_months_with_a_clock_change(pg_url, zone_name, month):
    zone = ZoneInfo(zone_name)
    engine = make_engine(pg_url)
    base = datetime(2024, month, 1, tzinfo=UTC) - timedelta(days=2)
    records = [session(f"s{i}", f"u{i % 3}", (base + timedelta(hours=7 * i)).strftime("%Y-%m-%dT%H:%M:%S"),
                       (base + timedelta(hours=7 * i + 5 + i % 11)).strftime("%Y-%m-%dT%H:%M:%S"), gpus=1)
               for i in range(150)]
    later = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        ensure_rollups(conn, zone)
        write_changes(conn, records, zone=zone, now=later)
    with engine.connect() as conn:
        rolled = monthly_report(conn, year=2024, month=month, zone=zone, now=later)
        start, end = month_bounds(2024, month, zone)
        raw = usage_report(conn, start=start, end=end, zone=ZoneInfo("UTC"), now=later)  # no rollups for UTC
    assert [(r.user_name, round(r.gpu_hours, 6)) for r in rolled] == [(r.user_name, round(r.gpu_hours, 6)) for r in raw]
    engine.dispose()
