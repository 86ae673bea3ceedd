"""Splitting sessions into local calendar days, including across a daylight-saving change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from portal.billing.periods import month_bounds, whole_days
from portal.rollups import rollup_rows, split_by_day


def test_split_across_local_midnight_in_taipei():
    taipei = ZoneInfo("Asia/Taipei")
    pieces = split_by_day(datetime(2025, 2, 28, 15, tzinfo=UTC), datetime(2025, 2, 28, 17, tzinfo=UTC), taipei)
    assert pieces == [(date(2025, 2, 28), 3600.0), (date(2025, 3, 1), 3600.0)]


def test_split_over_a_dst_night_keeps_every_second():
    berlin = ZoneInfo("Europe/Berlin")  # 2025-03-30 has 23 hours there
    start, end = datetime(2025, 3, 29, 12, tzinfo=UTC), datetime(2025, 3, 31, 12, tzinfo=UTC)
    pieces = split_by_day(start, end, berlin)
    assert [d for d, _ in pieces] == [date(2025, 3, 29), date(2025, 3, 30), date(2025, 3, 31)]
    assert pieces[1][1] == 23 * 3600
    assert sum(seconds for _, seconds in pieces) == (end - start).total_seconds()


def test_rollup_rows_sum_resources_and_skip_open_sessions():
    zone = ZoneInfo("UTC")
    base = {"user_name": "alice", "gpu_model": "A100", "gpu_count": 2, "cpu_request": 4.0,
            "memory_request_bytes": 8 * 1024**3}
    rows = rollup_rows([
        {**base, "started_at": datetime(2025, 3, 1, 10, tzinfo=UTC), "ended_at": datetime(2025, 3, 1, 11, tzinfo=UTC)},
        {**base, "started_at": datetime(2025, 3, 1, 12, tzinfo=UTC), "ended_at": None},
    ], zone)
    assert rows == [{"day": date(2025, 3, 1), "user_name": "alice", "gpu_model": "A100", "runtime_seconds": 3600.0,
                     "gpu_seconds": 7200.0, "cpu_core_seconds": 14400.0, "memory_gib_seconds": 28800.0}]


def test_month_and_whole_day_bounds():
    taipei = ZoneInfo("Asia/Taipei")
    start, end = month_bounds(2025, 12, taipei)
    assert (start, end) == (datetime(2025, 11, 30, 16, tzinfo=UTC), datetime(2025, 12, 31, 16, tzinfo=UTC))
    assert whole_days(start, end, taipei) == (date(2025, 12, 1), date(2026, 1, 1))
    assert whole_days(datetime(2025, 3, 1, 3, tzinfo=UTC), datetime(2025, 3, 1, 4, tzinfo=UTC), taipei) is None
