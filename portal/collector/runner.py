"""The collector loop: list, then watch; re-list on 410 Gone or any watch error (with backoff);
a periodic full resync as a safety net; a heartbeat that bounds unseen ends; database retries.

The heartbeat is one row (``portal_meta.collector_heartbeat``): the last moment the collector was in
step with the cluster. Open sessions are not rewritten for it; the core reads it as their last-seen bound.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from kubernetes.client import ApiException

from portal.collector.core import SessionRecord, apply_event, reconcile
from portal.collector.kube import PodSource
from portal.collector.pods import PodSpecHints, claim_names, observe_pod
from portal.collector.store import load_known, write_changes
from portal.meta import COLLECTOR_HEARTBEAT, COLLECTOR_SINCE, read_time, write_time
from portal.rollups import ensure_rollups

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Stopped(Exception):
    """The collector was asked to stop while waiting."""


class Backoff:
    """Exponential delays: 0.5 s, 1 s, 2 s ... capped; reset after success."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap, self._next = first, cap, first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


class Collector:
    """Keeps pod_sessions in step with the cluster. ``clock`` is the seam for tests."""

    def __init__(self, *, source: PodSource, engine: sa.Engine, zone: ZoneInfo, hints: PodSpecHints,
                 resync_interval: float = 300.0, heartbeat_interval: float = 30.0,
                 enqueue_export: bool = True, clock: Callable[[], datetime] = utcnow,
                 stop: threading.Event | None = None, db_backoff: Backoff | None = None,
                 watch_backoff: Backoff | None = None) -> None:
        self.source, self.engine, self.zone, self.hints = source, engine, zone, hints
        self.resync_interval, self.heartbeat_interval = resync_interval, heartbeat_interval
        self.enqueue_export, self.clock = enqueue_export, clock
        self.stop = stop or threading.Event()
        self.db_backoff = db_backoff or Backoff()
        self.watch_backoff = watch_backoff or Backoff()
        self.known: dict[str, SessionRecord] = {}
        self.node_gpu_models: dict[str, str] = {}
        self.claim_requests: dict[tuple[str, str], int | None] = {}
        self.relists = 0
        self.db_retries = 0
        self.watch_errors = 0  # watches (or listings) that failed, 410 Gone included
        self.watch_expired = 0  # of which 410 Gone
        self._gone_in_a_row = 0
        self.last_relist_at: datetime | None = None
        self.heartbeat_at: datetime | None = None  # as stored; None until the first heartbeat ever
        self._last_resync = self._last_heartbeat = 0.0

    # -- database, retried until it answers (an outage must not crash the collector) --------------
    def _in_transaction(self, work: Callable[[sa.Connection], object]) -> object:
        while True:
            try:
                with self.engine.begin() as connection:
                    result = work(connection)
                self.db_backoff.reset()
                return result
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                self.db_retries += 1
                delay = self.db_backoff.next()
                log.warning("database unavailable (%s); retrying in %.1fs", type(exc.orig).__name__, delay)
                self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped

    def _clock_seconds(self) -> float:
        return self.clock().timestamp()

    # -- the three moves ------------------------------------------------------------------------
    def prepare(self) -> None:
        """Make sure the daily rollups are in the configured time zone (rebuild once if not); record when
        this database began to receive sessions (kept from the first start); read the last heartbeat."""
        now = self.clock()

        def work(connection: sa.Connection) -> bool:
            write_time(connection, COLLECTOR_SINCE, now, keep_existing=True)
            self.heartbeat_at = read_time(connection, COLLECTOR_HEARTBEAT)
            return ensure_rollups(connection, self.zone)

        if self._in_transaction(work):
            log.info("rebuilt daily usage rollups for time zone %s", self.zone.key)

    def relist(self) -> str:
        """Full listing reconciled against the database; returns the resourceVersion to watch from."""
        raw_pods, resource_version = self.source.list_pods()
        self.node_gpu_models = self.source.node_gpu_models()
        self.claim_requests = self.source.claim_requests()
        pods = [p for p in (self._observe(r) for r in raw_pods) if p is not None]
        now = self.clock()

        def work(connection: sa.Connection) -> dict[str, SessionRecord]:
            known = load_known(connection, [p.uid for p in pods])
            changes = reconcile(known=known, pods=pods, now=now, heartbeat=self.heartbeat_at)
            write_changes(connection, changes, zone=self.zone, now=now, enqueue_export=self.enqueue_export)
            write_time(connection, COLLECTOR_HEARTBEAT, now)  # every open session was just listed: alive now
            known.update({c.pod_uid: c for c in changes})
            return known

        self.known = self._in_transaction(work)
        self.heartbeat_at = now
        self._last_heartbeat = self._clock_seconds()
        self.relists += 1
        self.last_relist_at = now
        self._last_resync = self._clock_seconds()
        log.info("listed %d user pods at resourceVersion %s", len(pods), resource_version)
        return resource_version

    def _observe(self, raw_pod: dict, *, read_missing_claims: bool = False):
        if read_missing_claims:  # a pod seen first in a watch event: its claim came after the last listing
            for namespace, name in claim_names(raw_pod):
                if (namespace, name) not in self.claim_requests:
                    self.claim_requests[(namespace, name)] = self.source.claim_request(namespace, name)
        return observe_pod(raw_pod, hints=self.hints, node_gpu_models=self.node_gpu_models,
                           claim_requests=self.claim_requests)

    def handle_event(self, event_type: str, raw_pod: dict) -> SessionRecord | None:
        pod = self._observe(raw_pod, read_missing_claims=event_type != "DELETED")
        if pod is None:
            return None
        now = self.clock()
        change = apply_event(known=self.known, event_type=event_type, pod=pod, now=now, heartbeat=self.heartbeat_at)
        if change is not None:
            self._in_transaction(lambda c: write_changes(
                c, [change], zone=self.zone, now=now, enqueue_export=self.enqueue_export))
            self.known[change.pod_uid] = change
        if event_type == "DELETED":
            self.known.pop(pod.uid, None)  # the pod is gone for good; its session is closed
        return change

    def heartbeat(self) -> None:
        """Record that all open sessions are alive now (only called while the view is in sync): one row."""
        now = self.clock()
        self._in_transaction(lambda c: write_time(c, COLLECTOR_HEARTBEAT, now))
        self.heartbeat_at = now
        self._last_heartbeat = self._clock_seconds()

    def request_stop(self) -> None:
        """Stop soon, from another thread: also ends a watch that would otherwise block until its timeout."""
        self.stop.set()
        interrupt = getattr(self.source, "interrupt", None)
        if interrupt is not None:
            interrupt()

    # -- scheduling -------------------------------------------------------------------------------
    def _due(self, last: float, interval: float) -> bool:
        return self._clock_seconds() - last >= interval

    def run(self) -> None:
        """Collect until ``stop`` is set. Never raises for Kubernetes or database trouble."""
        try:
            self.prepare()
            resource_version, in_sync = "", False
            while not self.stop.is_set():
                try:
                    if not in_sync or self._due(self._last_resync, self.resync_interval):
                        resource_version, in_sync = self.relist(), True
                    if self._due(self._last_heartbeat, self.heartbeat_interval):
                        self.heartbeat()
                    resource_version = self._watch(resource_version)
                    self.watch_backoff.reset()
                    self._gone_in_a_row = 0
                except Stopped:
                    raise
                except ApiException as exc:
                    in_sync = False
                    self.watch_errors += 1
                    if exc.status == 410:
                        self._after_gone()
                        continue
                    self._after_watch_error(exc)
                except Exception as exc:  # a dropped connection, a timeout, a bad response...
                    in_sync = False
                    self.watch_errors += 1
                    self._after_watch_error(exc)
        except Stopped:
            pass
        log.info("collector stopped")

    def _after_gone(self) -> None:
        """410 Gone: the resourceVersion is too old. Re-list at once the first time; when watches keep
        expiring before any event arrives, back off like after any other error."""
        self.watch_expired += 1
        self._gone_in_a_row += 1
        if self._gone_in_a_row == 1:
            log.info("watch expired (410 Gone); re-listing")
            return
        delay = self.watch_backoff.next()
        log.warning("watch expired %d times in a row (410 Gone); re-listing in %.1fs", self._gone_in_a_row, delay)
        self._sleep(delay)

    def _after_watch_error(self, exc: Exception) -> None:
        delay = self.watch_backoff.next()
        log.warning("watch failed (%s: %s); re-listing in %.1fs", type(exc).__name__, exc, delay)
        self._sleep(delay)

    def _watch(self, resource_version: str) -> str:
        """Consume one watch request; returns the last resourceVersion seen."""
        timeout = max(1, int(min(self.heartbeat_interval, self.resync_interval)))
        for event_type, obj in self.source.watch(resource_version, timeout_seconds=timeout):
            resource_version = (obj.get("metadata") or {}).get("resourceVersion") or resource_version
            self._gone_in_a_row = 0
            if event_type in ("ADDED", "MODIFIED", "DELETED"):
                self.handle_event(event_type, obj)
            if self.stop.is_set():
                break
            if self._due(self._last_heartbeat, self.heartbeat_interval):
                self.heartbeat()
            if self._due(self._last_resync, self.resync_interval):
                break
        return resource_version
