"""The pages with the GPU agent's data (real ingest into PostgreSQL, read through portal.gpu.queries), in
Chromium: GPUs utilised per node, idle-GPU sessions, allocated against in use over time, and a user's
"your GPU averaged N % this week"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_pages_browser import Visit, chromium  # noqa: F401 (a fixture)
from test_pages_charts_browser import cells, drawn, node, seeded, watch_console  # noqa: F401 (seeded: a fixture)

from portal.gpu.ingest import ingest_batch
from portal.gpu.schema import BatchIn

pytest_plugins = ["conftest_api"]
GIB = 1024**3


def send(portal, node: str, pod: str, gpus: list[str], util: float, model: str) -> None:
    """What a node's agent would have sent over the last 150 minutes, one sample a minute per GPU."""
    now = portal.now
    samples = [{"at": (now - timedelta(minutes=m)).isoformat(), "uuid": gpu, "model": model, "util_percent": util,
                "memory_used_bytes": 20 * GIB, "memory_total_bytes": 80 * GIB,
                "holders": [{"namespace": "jhub", "pod": pod}]}
               for m in range(150, 0, -1) for gpu in gpus]
    batch = BatchIn.model_validate({"node": node, "batch_id": f"{node}-1", "samples": samples})
    with portal.engine.begin() as conn:
        ingest_batch(conn, batch=batch, busy_threshold_percent=portal.ctx.gpu.idle_threshold_percent, now=now)


@pytest.fixture
def measured(seeded):
    send(seeded, "gpu01", "jupyter-bob", ["GPU-b1", "GPU-b2"], 90.0, "NVIDIA A100-SXM4-80GB")
    send(seeded, "gpu02", "jupyter-dave", ["GPU-d1", "GPU-d2", "GPU-d3", "GPU-d4"], 2.0, "NVIDIA H100 80GB HBM3")
    return seeded


def test_the_overview_shows_gpus_utilised_per_node_and_idle_gpu_sessions(chromium, measured, hub):  # noqa: F811
    admin = Visit(chromium, measured, hub, "admin")
    problems = watch_console(admin)
    admin.sign_in("/overview")
    nodes = {row.split("\t")[0]: row.split("\t")[1:] for row in admin.rows("#nodes")}
    assert nodes["gpu01"] == ["8", "2", "2", "90 %"]  # allocatable, requested, busy, average utilisation
    assert nodes["gpu02"] == ["4", "4", "0", "2 %"]
    [idle] = admin.rows("#idle-sessions")
    assert idle.split("\t")[:5] == ["dave", "default", "jupyter-dave", "gpu02", "4"]
    assert admin.text("#idle-count").startswith("1")
    allocation = drawn(admin, "chart-allocation")
    assert allocation["traces"] == 4  # allocated and in use, for each node
    header = admin.page.evaluate(
        "[...document.querySelectorAll('#chart-allocation-table thead th')].map(t => t.textContent)")
    assert header == ["", "gpu01 allocated", "gpu02 allocated", "gpu01 in use", "gpu02 in use"]
    assert cells(admin, "chart-allocation-table")[-1][1:] == ["2.00", "4.00", "2.00", "0.00"]
    assert problems == []
    admin.context.close()


def send_mig(portal, node: str, gpus: dict[str, dict[str, tuple[float, str | None]]], model: str) -> None:
    """A node whose GPUs are in MIG mode (no utilisation of their own), as its agent sends them: each round,
    every GPU and then its slices (slice UUID -> (its GPM utilisation, the pod holding it)), for 150 minutes."""
    now, samples = portal.now, []
    for m in range(150, 0, -1):
        at = (now - timedelta(minutes=m)).isoformat()
        for gpu, slices in gpus.items():
            samples.append({"at": at, "uuid": gpu, "model": model, "util_percent": None,
                            "memory_used_bytes": 20 * GIB, "memory_total_bytes": 80 * GIB})
            samples += [{"at": at, "uuid": mig, "parent_uuid": gpu, "model": f"{model} MIG 3g.40gb", "util_percent": util,
                         "memory_used_bytes": 10 * GIB, "memory_total_bytes": 40 * GIB,
                         "holders": [{"namespace": "jhub", "pod": pod}] if pod else []}
                        for mig, (util, pod) in slices.items()]
    batch = BatchIn.model_validate({"node": node, "batch_id": f"{node}-1", "samples": samples})
    with portal.engine.begin() as conn:
        ingest_batch(conn, batch=batch, busy_threshold_percent=portal.ctx.gpu.idle_threshold_percent, now=now)


@pytest.fixture
def measured_mig(measured):
    """gpu03: two H100s in MIG mode, two 3g.40gb slices each (the device plugin's single strategy: four
    nvidia.com/gpu); hana's slice of the first computes, every other slice is idle."""
    import sqlalchemy as sa

    portal = measured
    portal.cluster.nodes = [*portal.cluster.nodes, node("gpu03", 4)]
    portal.add_session("hana", start=portal.now - timedelta(hours=3), gpu_model="NVIDIA-H100-80GB-HBM3", uid="h1")
    with portal.engine.begin() as conn:
        conn.execute(sa.text("UPDATE pod_sessions SET node_name = 'gpu03' WHERE pod_uid = 'h1'"))
    send_mig(portal, "gpu03", {"GPU-m1": {"MIG-m1a": (70.0, "jupyter-hana"), "MIG-m1b": (0.0, None)},
                               "GPU-m2": {"MIG-m2a": (0.0, None), "MIG-m2b": (1.0, None)}}, "NVIDIA H100 80GB HBM3")
    return portal


def test_the_overview_counts_a_mig_gpu_busy_while_one_of_its_slices_computes(chromium, measured_mig, hub):  # noqa: F811
    admin = Visit(chromium, measured_mig, hub, "admin")
    problems = watch_console(admin)
    admin.sign_in("/overview")
    nodes = {row.split("\t")[0]: row.split("\t")[1:] for row in admin.rows("#nodes")}
    # allocatable and requested are the device plugin's (slices); utilised counts physical GPUs: the first H100
    # is busy through hana's slice; no average, since a MIG GPU has no utilisation of its own
    assert nodes["gpu03"] == ["4", "1", "1", ""]
    assert nodes["gpu01"] == ["8", "2", "2", "90 %"]  # the other nodes as before
    drawn(admin, "chart-allocation")
    header = admin.page.evaluate(
        "[...document.querySelectorAll('#chart-allocation-table thead th')].map(t => t.textContent)")
    in_use = header.index("gpu03 in use")
    assert [row[in_use] for row in cells(admin, "chart-allocation-table")[-3:]] == ["1.00", "1.00", "1.00"]
    assert problems == []
    admin.context.close()


def test_a_user_sees_how_busy_their_gpus_were_this_week(chromium, measured, hub):  # noqa: F811
    dave = Visit(chromium, measured, hub, "dave")
    dave.sign_in("/me")
    assert dave.text("#week") == "Your NVIDIA-H100-80GB-HBM3 averaged 2 % this week (peak 2 %)."
    [row] = dave.rows("#my-sessions")
    assert "2 %" in row and "idle GPU" in row and "20.0 GiB" in row
    dave.context.close()
