"""Billing benchmark: the monthly per-user report over 1,000,000 sessions in PostgreSQL (rollups +
live open sessions, one SQL statement) against a Python-loop baseline in the same run. The GPU price
changes in the middle of the month, so both split usage at that day. Prints p50 times and the ratio;
the last lines are ``name: value unit``.

    python benchmarks/billing.py          # PostgreSQL from JHUB_TEST_PG_URL (a throwaway db is made)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal.billing import month_bounds, monthly_report  # noqa: E402
from portal.billing.rates import RateDefaults, apply_configured_rates, set_rate  # noqa: E402
from benchmarks.throwaway_db import run_in_throwaway_database  # noqa: E402
from portal.db import make_engine, migrate  # noqa: E402
from portal.models import PodSession  # noqa: E402
from portal.rollups import GIB, day_start, rebuild_rollups  # noqa: E402
from portal.settings import load_settings  # noqa: E402

SESSIONS = 1_000_000
USERS = 200
ZONE = ZoneInfo("Asia/Taipei")
NOW = datetime(2025, 12, 15, tzinfo=UTC)  # mid-December: the report month is open, with running sessions
RUNS, BASELINE_RUNS = 30, 5
PRICE_CHANGE = date(2025, 12, 8)  # from this day (Taipei) the default GPU-hour costs 5 instead of 4
NEW_GPU_HOUR = 5.0

# One million sessions spread over 2025 up to NOW: 200 users, 10 min to 12 h each, a third without
# GPUs, the rest on A100s or H100s; sessions still running at NOW are open.
GENERATE = f"""
INSERT INTO pod_sessions (pod_uid, user_name, server_name, namespace, pod_name, node_name, image, gpu_model,
    cpu_request, memory_request_bytes, gpu_count, rdma_count, storage_request_bytes, started_at, ended_at,
    end_source, end_approximate, last_seen_at)
SELECT 'bench-' || g, 'user' || lpad((g % {USERS})::text, 3, '0'), '', 'jhub', 'jupyter-user' || (g % {USERS}),
    'gpu' || (g % 8), 'myorg/pytorch-jhub:24.10',
    CASE g % 3 WHEN 0 THEN '' WHEN 1 THEN 'NVIDIA-A100-SXM4-80GB' ELSE 'NVIDIA-H100-80GB-HBM3' END,
    (1 + g % 8)::float, (4 + g % 60)::bigint * {GIB}, CASE WHEN g % 3 = 0 THEN 0 ELSE 1 + g % 2 END, 0, NULL,
    s, CASE WHEN s + d > :now THEN NULL ELSE s + d END,
    CASE WHEN s + d > :now THEN NULL ELSE 'finished' END, false, LEAST(s + d, :now)
FROM (SELECT g,
             timestamptz '2025-01-01 00:00+00'
                 + (g - 1) * ((:now - timestamptz '2025-01-01 00:00+00') / {SESSIONS}) AS s,
             (600 + (g::bigint * 7919) % 42600) * interval '1 second' AS d
      FROM generate_series(1, {SESSIONS}) AS g) AS x
"""


def python_loop_report(engine: sa.Engine, start: datetime, end: datetime, rates: dict[str, float],
                       defaults: RateDefaults) -> dict[str, float]:
    """The baseline: fetch the month's sessions and add their costs up in Python, each part of a session at
    the GPU price in force then (model prices are older than the change and stay)."""
    s = PodSession.__table__
    change = day_start(PRICE_CHANGE, ZONE)
    totals: dict[str, float] = defaultdict(float)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.c.user_name, s.c.gpu_model, s.c.started_at, s.c.ended_at, s.c.gpu_count,
                                      s.c.cpu_request, s.c.memory_request_bytes)
                            .where(s.c.started_at < end, sa.or_(s.c.ended_at.is_(None), s.c.ended_at > start)))
        for user, model, started, ended, gpus, cpu, mem in rows:
            lo, hi = max(started, start), min(ended or NOW, end, NOW)
            if hi <= lo:
                continue
            for piece_lo, piece_hi, gpu_hour in ((lo, min(hi, change), defaults.gpu_hour),
                                                 (max(lo, change), hi, NEW_GPU_HOUR)):
                hours = (piece_hi - piece_lo).total_seconds() / 3600
                if hours > 0:
                    totals[user] += hours * (gpus * rates.get(model, gpu_hour) + cpu * defaults.cpu_core_hour
                                             + mem / GIB * defaults.memory_gib_hour)
    return dict(sorted(totals.items()))


def p50(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, result


def main() -> None:
    run_in_throwaway_database(run)


def run(url: str) -> None:
    migrate(url)
    engine = make_engine(url)
    settings = load_settings(database_url=url, cpu_rate_per_core_hour=0.05, memory_rate_per_gib_hour=0.01,
                             gpu_model_rates={"NVIDIA-H100-80GB-HBM3": 9.5})
    defaults = RateDefaults.from_settings(settings)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text(GENERATE), {"now": NOW})
        apply_configured_rates(conn, settings, now=NOW)
        set_rate(conn, gpu_model="", effective_from=PRICE_CHANGE, actor="benchmark", now=NOW,
                 prices={"gpu_hour": NEW_GPU_HOUR, "cpu_core_hour": defaults.cpu_core_hour,
                         "memory_gib_hour": defaults.memory_gib_hour})
        rebuild_rollups(conn, ZONE)  # what the collector maintains as sessions close
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    with engine.connect() as conn:
        counts = conn.execute(sa.text("SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL) FROM pod_sessions"
                                      )).one()
        rollup_rows = conn.execute(sa.text("SELECT count(*) FROM usage_daily")).scalar_one()
    print(f"data: {counts[0]} sessions ({counts[1]} open), {rollup_rows} daily rollup rows, "
          f"built in {time.perf_counter() - started:.0f} s")

    start, end = month_bounds(2025, 12, ZONE)

    def sql_report():
        with engine.connect() as conn:
            return monthly_report(conn, year=2025, month=12, zone=ZONE, now=NOW, defaults=defaults)

    def sql_report_without_rollups():  # the same statement, but every session read (UTC has no rollups)
        with engine.connect() as conn:
            return monthly_report(conn, year=2025, month=12, zone=ZoneInfo("UTC"), now=NOW, defaults=defaults)

    sql_report()  # warm caches
    sql_ms, rows = p50(sql_report, RUNS)
    raw_ms, _ = p50(sql_report_without_rollups, 5)
    loop_ms, loop_totals = p50(lambda: python_loop_report(engine, start, end, settings.gpu_model_rates, defaults),
                               BASELINE_RUNS)
    worst = max(abs(r.total_cost - loop_totals[r.user_name]) for r in rows)
    assert len(rows) == len(loop_totals) == USERS and worst < 1e-6 * max(loop_totals.values()), worst
    print(f"monthly report December 2025 ({ZONE.key}, GPU-hour 4 -> {NEW_GPU_HOUR:g} USD from {PRICE_CHANGE}), "
          f"{len(rows)} users, totals equal to the loop's "
          f"(max difference {worst:.2e} USD)")
    print(f"SQL with daily rollups + open sessions   p50 {sql_ms:8.2f} ms  ({RUNS} runs)")
    print(f"SQL over raw sessions (no rollups)       p50 {raw_ms:8.2f} ms  (5 runs)")
    print(f"Python loop over the month's sessions    p50 {loop_ms:8.2f} ms  ({BASELINE_RUNS} runs)")
    print(f"ratio: {loop_ms / sql_ms:.0f}x faster than the Python loop")
    engine.dispose()
    print(f"billing_monthly_report_vs_python_loop: {loop_ms / sql_ms:.0f} x")
    print(f"billing_monthly_report_p50: {sql_ms:.2f} ms")


if __name__ == "__main__":
    main()
