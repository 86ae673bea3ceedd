"""The collector's core: pod observations in, session records out. Pure; the time comes in as ``now``.

A session is one run of one pod (keyed by UID). It opens when the notebook container first runs
(billable start = its ``startedAt``) and closes once:
  * at the container's ``terminated.finishedAt`` when the pod is finished or being deleted;
  * at the deletion (``deletionTimestamp``, capped at the moment it was seen) when no finish time exists;
  * at its last-seen time, marked approximate, when the pod vanished unseen (e.g. while the collector was down)
    or is found finished without a finish time (e.g. its node was lost).
A closed session never changes again.

Last seen: a session's own ``last_seen_at`` (written with its row) or the collector's ``heartbeat``, when
later: the heartbeat is the last moment the collector was in step with the cluster, so every session still
open then was alive then. Open rows are not rewritten on each heartbeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime

from portal.collector.pods import PodObservation

END_FINISHED = "finished"
END_DELETED = "deleted"
END_LAST_SEEN = "last_seen"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """The stored state of one session (mirrors the pod_sessions row)."""

    pod_uid: str
    user_name: str
    server_name: str
    namespace: str
    pod_name: str
    node_name: str | None
    image: str | None
    gpu_model: str
    cpu_request: float
    memory_request_bytes: int
    gpu_count: int
    rdma_count: int
    storage_request_bytes: int | None
    started_at: datetime
    ended_at: datetime | None
    end_source: str | None
    end_approximate: bool
    last_seen_at: datetime

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    def as_row(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def seen_until(self, heartbeat: datetime | None) -> datetime:
        """The last moment this session is known to have been alive (see the module's note)."""
        if heartbeat is not None and self.is_open and heartbeat > self.last_seen_at:
            return heartbeat
        return self.last_seen_at

    def same_facts(self, other: SessionRecord | None) -> bool:
        """Equal apart from last_seen_at, which moves on every sighting and is not worth a write."""
        return other is not None and replace(self, last_seen_at=other.last_seen_at) == other


def session_for_pod(
    pod: PodObservation, *, previous: SessionRecord | None, now: datetime, deleted: bool = False,
    heartbeat: datetime | None = None,
) -> SessionRecord | None:
    """The session record after seeing ``pod`` (``deleted``: seen in a DELETED event). None: no session yet."""
    if previous is not None and not previous.is_open:
        return previous
    starts = [t for t in (pod.started_at, previous.started_at if previous else None) if t is not None]
    if not starts:
        return None  # never ran: nothing to bill
    started_at = min(starts)

    ended_at, end_source, approximate = None, None, False
    stopping = pod.terminal or deleted or pod.deletion_at is not None
    if stopping and pod.terminated_at is not None:
        ended_at, end_source = pod.terminated_at, END_FINISHED
    elif deleted:
        ended_at, end_source = min(pod.deletion_at or now, now), END_DELETED
    elif pod.terminal:  # finished without a finish time (node lost...): it ran until it was last seen
        last_seen = min(now, previous.seen_until(heartbeat)) if previous is not None else started_at
        ended_at, end_source, approximate = last_seen, END_LAST_SEEN, True
    if ended_at is not None:
        ended_at = max(ended_at, started_at)

    return SessionRecord(
        pod_uid=pod.uid,
        user_name=pod.user_name,
        server_name=pod.server_name,
        namespace=pod.namespace,
        pod_name=pod.pod_name,
        node_name=pod.node_name,
        image=pod.image,
        gpu_model=pod.gpu_model,
        cpu_request=pod.cpu_request,
        memory_request_bytes=pod.memory_request_bytes,
        gpu_count=pod.gpu_count,
        rdma_count=pod.rdma_count,
        storage_request_bytes=(pod.storage_request_bytes if pod.storage_request_bytes is not None
                               else previous.storage_request_bytes if previous else None),
        started_at=started_at,
        ended_at=ended_at,
        end_source=end_source,
        end_approximate=approximate,
        last_seen_at=now,
    )


def close_unseen(session: SessionRecord, heartbeat: datetime | None = None) -> SessionRecord:
    """Close a session whose pod vanished without being seen to end: at its last-seen time, approximate."""
    end = max(session.seen_until(heartbeat), session.started_at)
    return replace(session, ended_at=end, end_source=END_LAST_SEEN, end_approximate=True, last_seen_at=end)


def reconcile(
    *, known: Mapping[str, SessionRecord], pods: Iterable[PodObservation], now: datetime,
    heartbeat: datetime | None = None,
) -> list[SessionRecord]:
    """Session changes that bring ``known`` in line with a full listing of the pods (sorted by UID).

    ``known`` holds the open sessions and any stored session of a listed pod. Pods missing from the
    listing have ended while unseen; pods that are new get their true start from the pod itself.
    """
    changes: dict[str, SessionRecord] = {}
    listed: set[str] = set()
    for pod in pods:
        listed.add(pod.uid)
        previous = known.get(pod.uid)
        record = session_for_pod(pod, previous=previous, now=now, heartbeat=heartbeat)
        if record is not None and not record.same_facts(previous):
            changes[pod.uid] = record
    for uid, session in known.items():
        if session.is_open and uid not in listed:
            changes[uid] = close_unseen(session, heartbeat)
    return [changes[uid] for uid in sorted(changes)]


def apply_event(
    *, known: Mapping[str, SessionRecord], event_type: str, pod: PodObservation, now: datetime,
    heartbeat: datetime | None = None,
) -> SessionRecord | None:
    """The session change caused by one watch event (ADDED, MODIFIED, DELETED), or None."""
    previous = known.get(pod.uid)
    record = session_for_pod(pod, previous=previous, now=now, deleted=event_type == "DELETED", heartbeat=heartbeat)
    if record is None or record.same_facts(previous):
        return None
    return record
