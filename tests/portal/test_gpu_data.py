"""GPU samples into real PostgreSQL: idempotent ingest, per-session and hourly rollups, the idle-GPU
flag, retention, and the queries pages read."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from gpu_test_support import GIB, T0, add_session, batch, every, holder, sample

from portal.db import make_engine
from portal.gpu.ingest import BatchRefused, ingest_batch, prune_samples
from portal.gpu.models import GpuHourly, GpuSample
from portal.gpu.queries import idle_gpu_sessions, node_gpu_now, node_gpu_series, session_gpu_usage
from portal.gpu.settings import load_gpu_settings

SETTINGS = load_gpu_settings()


@pytest.fixture
def engine(pg_url):
    made = make_engine(pg_url)
    yield made
    made.dispose()


def ingest(engine, node, samples, *, now=None, batch_id=None):
    made = batch(node, samples, batch_id)
    with engine.begin() as conn:
        return ingest_batch(conn, batch=made, busy_threshold_percent=5.0,
                            now=now or max(s.at for s in made.samples))


def test_a_batch_rolls_up_per_session_and_hour_and_a_retried_batch_counts_once(engine):
    with engine.begin() as conn:
        add_session(conn, uid="uid-alice", user="alice")
    samples = [sample("GPU-a", T0 + timedelta(minutes=m), util=u, memory_gib=g, holders=[holder("jupyter-alice")])
               for m, u, g in ((0, 10.0, 4), (1, 30.0, 8), (2, 80.0, 6))]
    first = ingest(engine, "gpu01", samples, batch_id="b1")
    assert (first.accepted, first.duplicates) == (3, 0)
    again = ingest(engine, "gpu01", samples, batch_id="b1")  # the agent never saw the first answer
    assert (again.accepted, again.duplicates) == (0, 3)

    with engine.connect() as conn:
        usage = session_gpu_usage(conn, pod_uids=["uid-alice", "uid-nobody"], now=T0 + timedelta(minutes=3))
        hours = conn.execute(sa.select(GpuHourly.__table__)).all()
    assert set(usage) == {"uid-alice"}
    alice = usage["uid-alice"]
    assert alice.samples == 3 and alice.avg_util_percent == pytest.approx(40.0) and alice.peak_util_percent == 80.0
    assert alice.avg_memory_bytes == 6 * GIB and alice.peak_memory_bytes == 8 * GIB
    assert alice.idle_gpu is False and alice.idle_since == T0 + timedelta(minutes=2)  # idle after its last busy
    assert len(hours) == 1 and hours[0].samples == 3 and hours[0].allocated_samples == 3
    assert hours[0].busy_samples == 3 and hours[0].util_sum == pytest.approx(120.0)


def test_a_reused_pod_name_is_attributed_to_the_session_that_ran_then(engine):
    with engine.begin() as conn:
        add_session(conn, uid="uid-old", user="bob", start=T0 - timedelta(days=1), end=T0 - timedelta(hours=1))
        add_session(conn, uid="uid-new", user="bob", start=T0)
    ingest(engine, "gpu01", [sample("GPU-b", T0 + timedelta(minutes=5), holders=[holder("jupyter-bob")])])
    with engine.connect() as conn:
        usage = session_gpu_usage(conn, pod_uids=["uid-old", "uid-new"], now=T0 + timedelta(minutes=5))
        raw = conn.execute(sa.select(GpuSample.__table__.c.pod_uids, GpuSample.__table__.c.allocated)).one()
    assert set(usage) == {"uid-new"} and tuple(raw) == ("uid-new", True)


def test_a_session_idle_for_the_idle_period_is_flagged_and_one_busy_sample_resets_it(engine):
    with engine.begin() as conn:
        add_session(conn, uid="uid-carol", user="carol", gpus=2, server="big")
    times = every(T0, T0 + timedelta(hours=2, minutes=1), 60)
    for gpu in ("GPU-c1", "GPU-c2"):
        ingest(engine, "gpu01", [sample(gpu, at, util=2.0, holders=[holder("jupyter-carol")]) for at in times])
    now = times[-1] + timedelta(seconds=30)
    with engine.connect() as conn:
        flagged = idle_gpu_sessions(conn, now=now, settings=SETTINGS)
        usage = session_gpu_usage(conn, pod_uids=["uid-carol"], now=now, settings=SETTINGS)["uid-carol"]
        # the agent went quiet: old samples prove nothing about now
        later = idle_gpu_sessions(conn, now=now + timedelta(minutes=11), settings=SETTINGS)
    assert [(s.pod_uid, s.user_name, s.server_name, s.gpu_count, s.idle_since) for s in flagged] == [
        ("uid-carol", "carol", "big", 2, T0)]
    assert flagged[0].warned_at is None and flagged[0].stop_at is None
    assert usage.idle_gpu is True and usage.idle_since == T0
    assert later == []

    # one GPU computes for a moment: the idle clock starts again from there
    busy_at = times[-1] + timedelta(minutes=1)
    ingest(engine, "gpu01", [sample("GPU-c2", busy_at, util=97.0, holders=[holder("jupyter-carol")])])
    with engine.connect() as conn:
        assert idle_gpu_sessions(conn, now=busy_at, settings=SETTINGS) == []
        usage = session_gpu_usage(conn, pod_uids=["uid-carol"], now=busy_at, settings=SETTINGS)["uid-carol"]
    assert usage.idle_gpu is False and usage.idle_since == busy_at


def test_a_session_below_the_period_or_closed_is_not_flagged(engine):
    with engine.begin() as conn:
        add_session(conn, uid="uid-short", user="dan", pod="jupyter-dan")
        add_session(conn, uid="uid-closed", user="eve", pod="jupyter-eve", end=T0 + timedelta(hours=3))
    times = every(T0, T0 + timedelta(hours=1, minutes=59), 60)
    ingest(engine, "gpu01", [sample("GPU-d", at, util=0.0, holders=[holder("jupyter-dan")]) for at in times])
    ingest(engine, "gpu02", [sample("GPU-e", at, util=0.0, holders=[holder("jupyter-eve")])
                             for at in every(T0, T0 + timedelta(hours=2, minutes=30), 60)])
    with engine.connect() as conn:
        assert idle_gpu_sessions(conn, now=times[-1], settings=SETTINGS) == []
        with engine.begin() as c:  # eve's server ended: never flagged
            c.execute(sa.text("UPDATE pod_sessions SET ended_at = NULL WHERE pod_uid = 'uid-closed'"))
        assert [s.pod_uid for s in idle_gpu_sessions(conn, now=T0 + timedelta(hours=2, minutes=30),
                                                      settings=SETTINGS)] == ["uid-closed"]


def test_a_mig_slice_without_utilisation_is_idle_by_its_active_flag_and_one_active_sample_resets_it(engine):
    with engine.begin() as conn:
        add_session(conn, uid="uid-mia", user="mia")  # her slice's kernel let go of it (A100: no GPM)
        add_session(conn, uid="uid-max", user="max")  # his slice holds a computing process
        add_session(conn, uid="uid-old", user="ola")  # an agent from before the flag: no activity reading
    times = every(T0, T0 + timedelta(hours=2, minutes=1), 60)
    mig = {"parent": "GPU-m", "model": "NVIDIA A100-SXM4-80GB MIG 3g.40gb", "util": None}
    for uuid, pod, active in (("MIG-mia", "jupyter-mia", False), ("MIG-max", "jupyter-max", True),
                              ("MIG-ola", "jupyter-ola", None)):
        ingest(engine, "gpu01", [sample(uuid, at, holders=[holder(pod)], active=active, **mig) for at in times])
    now = times[-1] + timedelta(seconds=30)
    with engine.connect() as conn:
        flagged = idle_gpu_sessions(conn, now=now, settings=SETTINGS)
        usage = session_gpu_usage(conn, pod_uids=["uid-mia", "uid-max", "uid-old"], now=now, settings=SETTINGS)
        hours = {(h.gpu_uuid, h.hour): h for h in conn.execute(sa.select(GpuHourly.__table__))}
    assert [(s.pod_uid, s.idle_since) for s in flagged] == [("uid-mia", T0)]
    assert usage["uid-max"].idle_gpu is False and usage["uid-max"].idle_since == times[-1]
    assert usage["uid-old"].idle_since is None and usage["uid-old"].idle_gpu is False  # unknown: never flagged
    assert all(u.avg_util_percent is None for u in usage.values())  # a flag is no utilisation figure
    assert hours[("MIG-max", T0)].busy_samples == 60 and hours[("MIG-mia", T0)].busy_samples == 0

    # her kernel computes again for one round: the idle clock starts again from there
    busy_at = times[-1] + timedelta(minutes=1)
    ingest(engine, "gpu01", [sample("MIG-mia", busy_at, holders=[holder("jupyter-mia")], active=True, **mig)])
    with engine.connect() as conn:
        assert idle_gpu_sessions(conn, now=busy_at, settings=SETTINGS) == []


def test_a_utilisation_reading_wins_over_the_active_flag(engine):
    with engine.begin() as conn:
        add_session(conn, uid="uid-gpm", user="gus")  # a GPM slice at 1 %: idle, whatever its processes
    times = every(T0, T0 + timedelta(hours=2, minutes=1), 60)
    ingest(engine, "gpu01", [sample("MIG-g", at, util=1.0, parent="GPU-h", holders=[holder("jupyter-gus")],
                                    active=True) for at in times])
    with engine.connect() as conn:
        assert [s.pod_uid for s in idle_gpu_sessions(conn, now=times[-1], settings=SETTINGS)] == ["uid-gpm"]
        stored = conn.execute(sa.select(GpuSample.__table__.c.active).distinct()).scalars().all()
    assert stored == [None]  # the flag is kept only where it stands in for a utilisation


def test_node_series_and_now_count_physical_gpus_and_mig_slices_make_their_gpu_allocated(engine):
    with engine.begin() as conn:
        add_session(conn, uid="uid-f", user="frank")
    for minute in range(0, 120, 10):
        at = T0 + timedelta(minutes=minute)
        ingest(engine, "gpu01", [
            sample("GPU-1", at, util=90.0, holders=[holder("jupyter-frank")]),
            sample("GPU-2", at, util=0.0),
            sample("GPU-3", at, util=None),  # MIG mode: no utilisation for the whole GPU
            sample("MIG-3a", at, util=None, parent="GPU-3", holders=[{"pod_uid": "uid-f"}]),
        ])
        ingest(engine, "gpu02", [sample("GPU-9", at, util=50.0 if minute < 60 else 0.0, model="NVIDIA H100")])
    with engine.connect() as conn:
        hourly_points = node_gpu_series(conn, start=T0, end=T0 + timedelta(hours=2), bucket_seconds=3600)
        daily = node_gpu_series(conn, start=T0, end=T0 + timedelta(days=1), bucket_seconds=86400)
        now = node_gpu_now(conn, now=T0 + timedelta(minutes=115), settings=SETTINGS)
        with pytest.raises(ValueError, match="multiple of 3600"):
            node_gpu_series(conn, start=T0, end=T0 + timedelta(hours=1), bucket_seconds=600)
    assert [(p.node, p.bucket_start, p.gpus_total, p.gpus_allocated, p.gpus_busy) for p in hourly_points] == [
        ("gpu01", T0, 3, 2.0, 1.0), ("gpu01", T0 + timedelta(hours=1), 3, 2.0, 1.0),
        ("gpu02", T0, 1, 0.0, 1.0), ("gpu02", T0 + timedelta(hours=1), 1, 0.0, 0.0)]
    assert hourly_points[0].avg_util_percent == pytest.approx(45.0)
    assert [(p.node, p.gpus_total, p.gpus_busy) for p in daily] == [("gpu01", 3, 1.0), ("gpu02", 1, 0.5)]
    assert [(n.node, n.gpus_total, n.gpus_allocated, n.gpus_busy, n.gpu_model) for n in now] == [
        ("gpu01", 3, 2, 1, "NVIDIA A100-SXM4-80GB"), ("gpu02", 1, 0, 0, "NVIDIA H100")]
    assert now[0].avg_util_percent == pytest.approx(45.0)


def _mig_round(at, minute):
    """One agent round of a node with three GPUs in MIG mode (no utilisation of their own) and one without."""
    h100, a100 = "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"
    return [
        # H100 (GPM): slice 1 computes in the first half hour, slice 2 in the second: the GPU is busy throughout
        sample("GPU-h", at, util=None, model=h100),
        sample("MIG-h1", at, util=70.0 if minute < 30 else 0.0, parent="GPU-h", model=f"{h100} MIG 3g.40gb",
               holders=[holder("jupyter-hana")]),
        sample("MIG-h2", at, util=80.0 if minute >= 30 else 1.0, parent="GPU-h", model=f"{h100} MIG 3g.40gb"),
        # A100 (no GPM): one slice's flag says a compute process holds it for the first 20 minutes
        sample("GPU-a", at, util=None),
        sample("MIG-a1", at, util=None, active=minute < 20, parent="GPU-a", model=f"{a100} MIG 3g.40gb"),
        sample("MIG-a2", at, util=None, active=False, parent="GPU-a", model=f"{a100} MIG 3g.40gb"),
        # an H100 whose slices hold nothing busy, and a whole GPU at 40 %
        sample("GPU-i", at, util=None, model=h100),
        sample("MIG-i1", at, util=2.0, parent="GPU-i", model=f"{h100} MIG 3g.40gb"),
        sample("GPU-w", at, util=40.0),
    ]


def test_a_mig_gpu_is_busy_while_any_of_its_slices_is_busy_now_and_in_the_hourly_series(engine):
    with engine.begin() as conn:
        add_session(conn, uid="uid-hana", user="hana")
    rounds = [(T0 + timedelta(minutes=m), m) for m in range(60)]
    for at, minute in rounds:
        ingest(engine, "gpu03", _mig_round(at, minute), batch_id=f"r{minute}")
    with engine.connect() as conn:
        [hour] = node_gpu_series(conn, start=T0, end=T0 + timedelta(hours=1), bucket_seconds=3600)
        hours = {h.gpu_uuid: h for h in conn.execute(sa.select(GpuHourly.__table__))}
        early = node_gpu_now(conn, now=T0 + timedelta(minutes=10, seconds=5), settings=SETTINGS)
        late = node_gpu_now(conn, now=T0 + timedelta(minutes=59, seconds=5), settings=SETTINGS)
        raw = GpuSample.__table__
        parents = dict(conn.execute(sa.select(raw.c.gpu_uuid, raw.c.active).where(
            raw.c.parent_uuid == "", raw.c.sampled_at == T0 + timedelta(minutes=10))).all())
    # the H100's slices were busy at different times: 60 of 60 samples (neither slice's count tells it alone)
    assert (hours["GPU-h"].busy_samples, hours["MIG-h1"].busy_samples, hours["MIG-h2"].busy_samples) == (60, 30, 30)
    assert hours["GPU-a"].busy_samples == 20 and hours["GPU-i"].busy_samples == 0
    assert hours["GPU-h"].allocated_samples == 60 and hours["GPU-a"].allocated_samples == 0  # hana holds MIG-h1
    assert hours["GPU-h"].util_samples == 0  # a MIG GPU has no utilisation of its own, and gets none
    assert parents == {"GPU-h": True, "GPU-a": True, "GPU-i": False, "GPU-w": None}
    # physical GPUs only: 4 of them; busy on average H100 1 + A100 1/3 + whole GPU 1 (40 %)
    assert (hour.gpus_total, hour.gpus_allocated, hour.gpus_busy) == (4, 1.0, pytest.approx(2.3333, abs=1e-4))
    assert hour.avg_util_percent == pytest.approx(40.0)  # the whole GPU's own: no slice's share mixed in
    assert [(n.gpus_total, n.gpus_allocated, n.gpus_busy) for n in early] == [(4, 1, 3)]
    assert [(n.gpus_total, n.gpus_busy) for n in late] == [(4, 2)]  # the A100's slice went quiet at minute 20
    assert late[0].avg_util_percent == pytest.approx(40.0)

    # the agent never saw the answers: every round sent again changes nothing
    for at, minute in rounds:
        assert ingest(engine, "gpu03", _mig_round(at, minute), batch_id=f"r{minute}").accepted == 0
    with engine.connect() as conn:
        again = {h.gpu_uuid: h for h in conn.execute(sa.select(GpuHourly.__table__))}
    assert {u: (h.samples, h.busy_samples) for u, h in again.items()} == {
        u: (h.samples, h.busy_samples) for u, h in hours.items()}


def test_a_mig_gpu_whose_slices_have_no_activity_reading_is_not_counted_busy(engine):
    at = T0 + timedelta(minutes=1)
    ingest(engine, "gpu01", [sample("GPU-o", at, util=None), sample("MIG-o1", at, util=None, parent="GPU-o")])
    with engine.connect() as conn:
        [now] = node_gpu_now(conn, now=at, settings=SETTINGS)
        active = conn.execute(sa.select(GpuSample.__table__.c.active).where(
            GpuSample.__table__.c.gpu_uuid == "GPU-o")).scalar_one()
    assert (now.gpus_total, now.gpus_busy, now.avg_util_percent, active) == (1, 0, None, None)  # unknown


def test_retention_prunes_raw_samples_and_keeps_the_rollups(engine):
    with engine.begin() as conn:
        add_session(conn, uid="uid-g", user="gina")
    ingest(engine, "gpu01", [sample("GPU-g", T0 + timedelta(minutes=m), holders=[holder("jupyter-gina")])
                             for m in range(10)])
    with engine.begin() as conn:
        assert prune_samples(conn, now=T0 + timedelta(days=7, minutes=5), retention=timedelta(days=7)) == 5
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(GpuSample.__table__)).scalar_one() == 5
        assert conn.execute(sa.select(GpuHourly.__table__.c.samples)).scalar_one() == 10
        assert session_gpu_usage(conn, pod_uids=["uid-g"])["uid-g"].samples == 10


def test_samples_from_the_future_are_refused_with_the_node_named(engine):
    with pytest.raises(BatchRefused, match="in the future.*gpu07"):
        ingest(engine, "gpu07", [sample("GPU-x", T0 + timedelta(hours=1))], now=T0)


def test_the_gpu_worker_prunes_past_the_retention_setting(engine):
    import threading

    from portal.gpu.reclaim import run_gpu_worker

    ingest(engine, "gpu01", [sample("GPU-w", T0 + timedelta(days=d)) for d in range(4)], now=T0 + timedelta(days=4))
    stop = threading.Event()

    def clock():  # one round of the loop, at T0 + 4 days
        stop.set()
        return T0 + timedelta(days=4)

    run_gpu_worker(engine, settings=load_gpu_settings(sample_retention_days=2.5), stop=stop, clock=clock)
    with engine.connect() as conn:
        kept = conn.execute(sa.select(GpuSample.__table__.c.sampled_at).order_by(GpuSample.__table__.c.sampled_at))
        assert [at for (at,) in kept] == [T0 + timedelta(days=2), T0 + timedelta(days=3)]
        assert conn.execute(sa.select(sa.func.sum(GpuHourly.__table__.c.samples))).scalar_one() == 4  # kept
    stop.clear()
    run_gpu_worker(engine, settings=load_gpu_settings(sample_retention_days=2.5, hourly_retention_days=1.5),
                   stop=stop, clock=clock)
    with engine.connect() as conn:
        hours = conn.execute(sa.select(GpuHourly.__table__.c.hour).order_by(GpuHourly.__table__.c.hour))
        assert [h for (h,) in hours] == [T0 + timedelta(days=3)]


def test_the_embedded_sqlite_database_takes_samples_too(sqlite_url):
    trial = make_engine(sqlite_url)
    try:
        with trial.begin() as conn:
            add_session(conn, uid="uid-s", user="sam")
        samples = [sample("GPU-s", at, util=1.0, holders=[holder("jupyter-sam")])
                   for at in every(T0, T0 + timedelta(hours=2, minutes=1), 60)]
        assert ingest(trial, "gpu01", samples).accepted == len(samples)
        assert ingest(trial, "gpu01", samples).duplicates == len(samples)
        now = T0 + timedelta(hours=2, minutes=1)
        with trial.connect() as conn:
            assert [s.pod_uid for s in idle_gpu_sessions(conn, now=now, settings=SETTINGS)] == ["uid-s"]
            series = node_gpu_series(conn, start=T0, end=now, bucket_seconds=3600)
            assert [(p.bucket_start, p.gpus_total, p.gpus_allocated) for p in series] == [
                (T0 + timedelta(hours=h), 1, 1.0) for h in range(3)]
            assert [n.gpus_allocated for n in node_gpu_now(conn, now=now)] == [1]
    finally:
        trial.dispose()
