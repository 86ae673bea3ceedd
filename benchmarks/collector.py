"""Collector benchmark: reconcile a 5,000-pod snapshot into PostgreSQL, set-based vs a naive per-pod
SELECT-then-INSERT/UPDATE baseline, in the same run; then an unchanged resync, and the latency from a
watch event to its committed row. Prints figures; the last lines are ``name: value unit``.

    python benchmarks/collector.py        # PostgreSQL from JHUB_TEST_PG_URL (a throwaway db is made)
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal.collector.core import SessionRecord, reconcile  # noqa: E402
from portal.collector.pods import PodSpecHints, observe_pod  # noqa: E402
from portal.collector.runner import Collector  # noqa: E402
from portal.collector.store import load_known, write_changes  # noqa: E402
from portal.db import make_engine, migrate  # noqa: E402
from portal.models import PodSession  # noqa: E402

PODS = 5000
EVENTS = 300
ZONE = ZoneInfo("Asia/Taipei")
ADMIN_URL = os.environ.get("JHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BASE = datetime(2025, 3, 1, tzinfo=UTC)


def pod(i: int, *, started: datetime, finished: datetime | None = None) -> dict:
    state = ({"terminated": {"startedAt": started.isoformat(), "finishedAt": finished.isoformat()}}
             if finished else {"running": {"startedAt": started.isoformat()}})
    return {
        "metadata": {"uid": f"pod-{i:06d}", "name": f"jupyter-user{i}", "namespace": "jhub",
                     "resourceVersion": str(1000 + i),
                     "labels": {"component": "singleuser-server", "hub.jupyter.org/username": f"user{i}"},
                     "annotations": {"hub.jupyter.org/username": f"user{i}"}},
        "spec": {"nodeName": f"gpu{i % 16:02d}", "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100"},
                 "containers": [{"name": "notebook", "image": "myorg/pytorch-jhub:24.10", "resources": {
                     "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": str(i % 3)}}}]},
        "status": {"phase": "Succeeded" if finished else "Running",
                   "containerStatuses": [{"name": "notebook", "state": state}]},
    }


class StatementCounter:
    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        self.writes = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.count += 1
        if not statement.lstrip().upper().startswith("SELECT"):
            self.writes += 1

    def reset(self) -> None:
        self.count = self.writes = 0


def set_based(engine: sa.Engine, observations, now: datetime) -> None:
    with engine.begin() as conn:
        known = load_known(conn, [p.uid for p in observations])
        changes = reconcile(known=known, pods=observations, now=now)
        write_changes(conn, changes, zone=ZONE, now=now)


def naive(engine: sa.Engine, observations, now: datetime) -> None:
    """What the old poller did: look each pod up, then insert or update it, one pod at a time."""
    table = PodSession.__table__
    with engine.begin() as conn:
        for p in observations:
            row = conn.execute(sa.select(table).where(table.c.pod_uid == p.uid)).mappings().first()
            values = {"user_name": p.user_name, "server_name": p.server_name, "namespace": p.namespace,
                      "pod_name": p.pod_name, "node_name": p.node_name, "image": p.image, "gpu_model": p.gpu_model,
                      "cpu_request": p.cpu_request, "memory_request_bytes": p.memory_request_bytes,
                      "gpu_count": p.gpu_count, "rdma_count": p.rdma_count, "last_seen_at": now}
            if row is None:
                conn.execute(sa.insert(table).values(pod_uid=p.uid, started_at=p.started_at, ended_at=None,
                                                     end_approximate=False, **values))
            else:
                conn.execute(sa.update(table).where(table.c.pod_uid == p.uid).values(**values))


def truncate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE pod_sessions, usage_daily, mysql_outbox"))


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"jhub_bench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        run(url)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def run(url: str) -> None:
    migrate(url)
    engine = make_engine(url)
    counter = StatementCounter(engine)
    now = BASE + timedelta(hours=8)
    snapshot = [observe_pod(pod(i, started=BASE + timedelta(seconds=i))) for i in range(PODS)]
    print(f"snapshot: {PODS} running user pods, PostgreSQL, {len(snapshot)} observations")

    with engine.connect() as conn:  # warm the pool and the statement caches of both paths
        conn.execute(sa.text("SELECT 1"))
    results = {}
    for label, fn in (("naive per-pod SELECT-then-INSERT/UPDATE", naive), ("set-based reconcile", set_based)):
        truncate(engine)
        counter.reset()
        seconds = timed(fn, engine, snapshot, now)
        results[label] = (seconds, counter.count)
        print(f"{label:42s} {seconds * 1000:9.1f} ms {counter.count:7d} statements")
    (naive_s, naive_n), (set_s, set_n) = results.values()
    speedup, fewer = naive_s / set_s, naive_n / set_n
    print(f"ratio: {speedup:.1f}x faster, {fewer:.0f}x fewer statements")

    counter.reset()
    seconds = timed(set_based, engine, snapshot, now + timedelta(minutes=5))
    resync_statements, resync_writes = counter.count, counter.writes
    print(f"unchanged resync: {seconds * 1000:.1f} ms, {resync_statements} statements, {resync_writes} writes")

    collector = Collector(source=None, engine=engine, zone=ZONE, hints=PodSpecHints())
    with engine.connect() as conn:
        collector.known = load_known(conn)
    latencies = []
    for i in range(EVENTS):  # alternately a new pod starting and a running pod finishing
        if i % 2 == 0:
            raw = pod(PODS + i, started=now)
        else:
            raw = pod(i, started=BASE + timedelta(seconds=i), finished=now + timedelta(seconds=i))
        start = time.perf_counter()
        change = collector.handle_event("MODIFIED", raw)
        latencies.append(time.perf_counter() - start)
        assert isinstance(change, SessionRecord)
    p50 = statistics.median(latencies) * 1000
    p95 = statistics.quantiles(latencies, n=20)[-1] * 1000
    print(f"watch event -> committed row over {EVENTS} events: p50 {p50:.2f} ms, p95 {p95:.2f} ms")
    engine.dispose()

    print(f"collector_reconcile_speedup: {speedup:.1f} x")
    print(f"collector_reconcile_statement_ratio: {fewer:.0f} x")
    print(f"collector_unchanged_resync_statements: {resync_statements} statements")
    print(f"collector_unchanged_resync_writes: {resync_writes} statements")
    print(f"collector_watch_event_to_commit_p50: {p50:.2f} ms")


if __name__ == "__main__":
    main()
