"""Collector benchmark: reconcile a 5,000-pod snapshot into PostgreSQL, set-based vs a naive per-pod
SELECT-then-INSERT/UPDATE baseline, in the same run; then what the running collector does when nothing
changed (its periodic resync through ``Collector.relist`` followed by a heartbeat), and the latency from
a watch event to its committed row. Prints figures; the last lines are ``name: value unit``.

    python benchmarks/collector.py        # PostgreSQL from JHUB_TEST_PG_URL (a throwaway db is made)
"""

from __future__ import annotations

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
from benchmarks.throwaway_db import run_in_throwaway_database  # noqa: E402
from portal.db import make_engine, migrate  # noqa: E402
from portal.meta import COLLECTOR_HEARTBEAT, write_time  # noqa: E402
from portal.models import PodSession  # noqa: E402

PODS = 5000
EVENTS = 300
ZONE = ZoneInfo("Asia/Taipei")
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
    """Statements sent, writes among them, and writes to the session data (sessions, rollups, outbox)."""

    SESSION_TABLES = ("pod_sessions", "usage_daily", "mysql_outbox")

    def __init__(self, engine: sa.Engine) -> None:
        self.count = self.writes = self.session_writes = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.count += 1
        if not statement.lstrip().upper().startswith("SELECT"):
            self.writes += 1
            if any(table in statement for table in self.SESSION_TABLES):
                self.session_writes += 1

    def reset(self) -> None:
        self.count = self.writes = self.session_writes = 0


class SnapshotSource:
    """Stands in for the Kubernetes API: every listing returns the same pods."""

    def __init__(self, pods: list[dict]) -> None:
        self.pods = pods

    def list_pods(self) -> tuple[list[dict], str]:
        return self.pods, "1"

    def node_gpu_models(self) -> dict[str, str]:
        return {}

    def claim_requests(self) -> dict:
        return {}

    def claim_request(self, namespace: str, name: str) -> None:
        return None


def set_based(engine: sa.Engine, observations, now: datetime) -> None:
    """The collector's relist transaction (Collector.relist without the listing call)."""
    with engine.begin() as conn:
        known = load_known(conn, [p.uid for p in observations])
        changes = reconcile(known=known, pods=observations, now=now)
        write_changes(conn, changes, zone=ZONE, now=now, enqueue_export=True)
        write_time(conn, COLLECTOR_HEARTBEAT, now)


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
        conn.execute(sa.text("TRUNCATE pod_sessions, usage_daily, mysql_outbox, portal_meta"))


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    run_in_throwaway_database(run)


def run(url: str) -> None:
    migrate(url)
    engine = make_engine(url)
    counter = StatementCounter(engine)
    now = BASE + timedelta(hours=8)
    raw_snapshot = [pod(i, started=BASE + timedelta(seconds=i)) for i in range(PODS)]
    snapshot = [observe_pod(raw) for raw in raw_snapshot]
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

    # What the running collector does when nothing changed: its periodic resync, then a heartbeat.
    clock = {"now": now + timedelta(minutes=5)}
    collector = Collector(source=SnapshotSource(raw_snapshot), engine=engine, zone=ZONE, hints=PodSpecHints(),
                          clock=lambda: clock["now"])
    collector.prepare()
    counter.reset()
    seconds = timed(collector.relist)
    resync_statements, resync_writes, resync_session_writes = counter.count, counter.writes, counter.session_writes
    print(f"unchanged resync (Collector.relist): {seconds * 1000:.1f} ms, {resync_statements} statements, "
          f"{resync_writes} writes ({resync_session_writes} to sessions, rollups or the export queue)")
    clock["now"] += timedelta(seconds=30)
    counter.reset()
    seconds = timed(collector.heartbeat)
    beat_statements, beat_session_writes = counter.count, counter.session_writes
    print(f"heartbeat (Collector.heartbeat): {seconds * 1000:.2f} ms, {beat_statements} statements, "
          f"{counter.writes} writes ({beat_session_writes} to sessions, rollups or the export queue)")
    session_writes = resync_session_writes + beat_session_writes

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
    print(f"collector_heartbeat_statements: {beat_statements} statements")
    print(f"collector_unchanged_resync_and_heartbeat_session_writes: {session_writes} statements")
    print(f"collector_watch_event_to_commit_p50: {p50:.2f} ms")


if __name__ == "__main__":
    main()
