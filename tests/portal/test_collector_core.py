"""The collector's pure core: exact starts and ends from pod timestamps, restarts without duplicates."""

from __future__ import annotations

from datetime import UTC, datetime

from portal_test_pods import user_pod

from portal.collector.core import apply_event, close_unseen, reconcile
from portal.collector.pods import observe_pod

GIB = 1024**3


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(pod: dict, when: str, *, known=None, kind: str = "MODIFIED"):
    """The session change one watch event causes, seen at ``when``."""
    return apply_event(known=known or {}, event_type=kind, pod=observe_pod(pod), now=at(when))


def test_pod_facts_are_read_from_the_recorded_pod():
    pod = observe_pod(user_pod("alice", gpus=2, cpu="4", memory="16Gi"))
    assert pod.user_name == "alice" and pod.pod_name == "jupyter-alice" and pod.namespace == "jhub"
    assert pod.uid == "uid-alice"
    assert (pod.cpu_request, pod.memory_request_bytes, pod.gpu_count) == (4.0, 16 * 1024**3, 2)
    assert pod.gpu_model == "NVIDIA-A100-SXM4-80GB" and pod.node_name == "gpu01"
    assert pod.image == "myorg/pytorch-jhub:24.10"
    assert pod.started_at == at("2025-03-01T02:00:00")


def test_gpu_model_falls_back_to_the_node_label_and_pods_without_user_are_ignored():
    raw = user_pod("bob")
    raw["spec"].pop("nodeSelector")
    assert observe_pod(raw, node_gpu_models={"gpu01": "NVIDIA-H100-80GB-HBM3"}).gpu_model == "NVIDIA-H100-80GB-HBM3"
    raw["metadata"]["annotations"].clear()
    raw["metadata"]["labels"].pop("hub.jupyter.org/username")
    assert observe_pod(raw) is None


def test_session_starts_at_container_start_not_at_the_first_sighting():
    change = event(user_pod(), "2025-03-01T02:00:29", kind="MODIFIED")
    assert change.started_at == at("2025-03-01T02:00:00")
    assert change.ended_at is None and change.last_seen_at == at("2025-03-01T02:00:29")


def test_pending_pod_opens_no_session():
    assert event(user_pod(started=None), "2025-03-01T02:00:00", kind="ADDED") is None


def test_end_is_the_container_finish_time_even_when_seen_later():
    opened = event(user_pod(), "2025-03-01T02:00:01", kind="ADDED")
    stopping = observe_pod(user_pod(finished="2025-03-01T05:30:07", deletion="2025-03-01T05:30:30"))
    closed = apply_event(known={opened.pod_uid: opened}, event_type="MODIFIED", pod=stopping,
                       now=at("2025-03-01T05:31:00"))
    assert closed.ended_at == at("2025-03-01T05:30:07")
    assert closed.end_source == "finished" and not closed.end_approximate
    # the DELETED event that follows changes nothing: a closed session is final
    gone = apply_event(known={opened.pod_uid: closed}, event_type="DELETED", pod=stopping,
                       now=at("2025-03-01T05:32:00"))
    assert gone is None


def test_deletion_without_finish_time_ends_at_the_deletion():
    opened = event(user_pod(), "2025-03-01T02:00:01", kind="ADDED")
    deleted = observe_pod(user_pod(deletion="2025-03-01T04:00:00"))
    closed = apply_event(known={opened.pod_uid: opened}, event_type="DELETED", pod=deleted,
                         now=at("2025-03-01T04:00:02"))
    assert closed.ended_at == at("2025-03-01T04:00:00") and closed.end_source == "deleted"
    # a force deletion has no timestamp: it ended when it was seen deleted
    forced = event(user_pod(), "2025-03-01T04:00:02", known={opened.pod_uid: opened}, kind="DELETED")
    assert forced.ended_at == at("2025-03-01T04:00:02")


def test_graceful_deletion_in_progress_keeps_the_session_open():
    opened = event(user_pod(), "2025-03-01T02:00:01", kind="ADDED")
    terminating = observe_pod(user_pod(deletion="2025-03-01T04:00:30"))
    assert apply_event(known={opened.pod_uid: opened}, event_type="MODIFIED", pod=terminating,
                       now=at("2025-03-01T04:00:00")) is None


def test_container_restart_keeps_the_first_start():
    opened = event(user_pod(), "2025-03-01T02:00:01", kind="ADDED")
    restarted = observe_pod(user_pod(started="2025-03-01T03:00:00"))
    assert apply_event(known={opened.pod_uid: opened}, event_type="MODIFIED", pod=restarted,
                       now=at("2025-03-01T03:00:01")) is None


def test_restart_reconcile_no_duplicate_true_start_and_last_seen_end():
    now = at("2025-03-01T10:00:00")
    running = event(user_pod("alice"), "2025-03-01T02:00:05", kind="ADDED")
    vanished = event(user_pod("bob"), "2025-03-01T02:00:05", kind="ADDED")
    vanished = vanished.__class__(**{**vanished.as_row(), "last_seen_at": at("2025-03-01T06:15:00")})
    known = {running.pod_uid: running, vanished.pod_uid: vanished}
    listing = [
        observe_pod(user_pod("alice")),  # still running: unchanged
        observe_pod(user_pod("carol", started="2025-03-01T07:00:00")),  # started while the collector was down
        observe_pod(user_pod("dave", started="2025-03-01T07:00:00", finished="2025-03-01T08:00:00", phase="Succeeded")),
    ]
    changes = reconcile(known=known, pods=listing, now=now)
    by_uid = {c.pod_uid: c for c in changes}
    assert sorted(by_uid) == ["uid-bob", "uid-carol", "uid-dave"]  # alice is not written again
    assert by_uid["uid-bob"].ended_at == at("2025-03-01T06:15:00") and by_uid["uid-bob"].end_approximate
    assert by_uid["uid-carol"].started_at == at("2025-03-01T07:00:00") and by_uid["uid-carol"].ended_at is None
    assert by_uid["uid-dave"].ended_at == at("2025-03-01T08:00:00") and not by_uid["uid-dave"].end_approximate
    # a second pass over the same world changes nothing
    known.update(by_uid)
    assert reconcile(known=known, pods=listing, now=at("2025-03-01T10:05:00")) == []


def test_close_unseen_never_ends_before_the_start():
    opened = event(user_pod(), "2025-03-01T01:00:00", kind="ADDED")
    assert close_unseen(opened).ended_at == opened.started_at


def test_a_pod_found_finished_without_a_finish_time_ends_when_it_was_last_seen():
    """E.g. its node was lost while the collector was down: Failed, no terminated.finishedAt. It ran until
    it was last seen (04:00), not until the collector came back (07:00)."""
    opened = event(user_pod("bob"), "2025-03-01T04:00:00", kind="ADDED")
    failed = observe_pod(user_pod("bob", phase="Failed"))
    [closed] = reconcile(known={opened.pod_uid: opened}, pods=[failed], now=at("2025-03-01T07:00:00"))
    assert closed.ended_at == at("2025-03-01T04:00:00")
    assert closed.end_source == "last_seen" and closed.end_approximate


def test_the_heartbeat_is_the_last_seen_bound_of_open_sessions():
    opened = event(user_pod("bob"), "2025-03-01T04:00:00", kind="ADDED")
    heartbeat = at("2025-03-01T05:30:00")  # the collector was in step with the cluster until then
    failed = observe_pod(user_pod("bob", phase="Failed"))
    [closed] = reconcile(known={opened.pod_uid: opened}, pods=[failed], now=at("2025-03-01T07:00:00"),
                         heartbeat=heartbeat)
    assert closed.ended_at == heartbeat and closed.end_approximate
    [vanished] = reconcile(known={opened.pod_uid: opened}, pods=[], now=at("2025-03-01T07:00:00"),
                           heartbeat=heartbeat)
    assert vanished.ended_at == heartbeat and vanished.end_source == "last_seen"
    # seen by a watch event: never later than that event, never before the start
    seen = apply_event(known={opened.pod_uid: opened}, event_type="MODIFIED", pod=failed,
                       now=at("2025-03-01T05:00:00"), heartbeat=heartbeat)
    assert seen.ended_at == at("2025-03-01T05:00:00")
    never_seen_running = event(user_pod("carol", phase="Failed"), "2025-03-01T07:00:00")
    assert never_seen_running.ended_at == never_seen_running.started_at and never_seen_running.end_approximate
    # a heartbeat does not move a closed session, nor is a later sighting alone worth a write
    assert close_unseen(opened, heartbeat).ended_at == heartbeat
    assert apply_event(known={opened.pod_uid: opened}, event_type="MODIFIED", pod=observe_pod(user_pod("bob")),
                       now=at("2025-03-01T06:00:00"), heartbeat=heartbeat) is None


def test_storage_request_from_the_claim_then_ephemeral_storage_then_the_setting():
    from portal.collector.pods import PodSpecHints

    claims = {("jhub", "claim-alice"): 10 * GIB}
    assert observe_pod(user_pod("alice"), claim_requests=claims).storage_request_bytes == 10 * GIB
    scratch = user_pod("alice", ephemeral_storage="20Gi")
    assert observe_pod(scratch).storage_request_bytes == 20 * GIB  # its claim is not known: the pod's request
    configured = PodSpecHints(storage_size_bytes=128 * GIB)
    assert observe_pod(user_pod("alice"), hints=configured).storage_request_bytes == 128 * GIB
    assert observe_pod(user_pod("alice")).storage_request_bytes is None
    # carried into the session, and kept when a later sighting knows less
    opened = event(user_pod("alice", ephemeral_storage="20Gi"), "2025-03-01T02:00:01")
    assert opened.storage_request_bytes == 20 * GIB
    assert apply_event(known={opened.pod_uid: opened}, event_type="MODIFIED", pod=observe_pod(user_pod("alice")),
                       now=at("2025-03-01T02:01:00")) is None
