"""The pages with the GPU agent's data (real ingest into PostgreSQL, read through portal.gpu.queries), in
Chromium: GPUs utilised per node, idle-GPU sessions, allocated against in use over time, and a user's
"your GPU averaged N % this week"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_pages_browser import Visit, chromium  # noqa: F401 (a fixture)
from test_pages_charts_browser import cells, drawn, seeded, watch_console  # noqa: F401 (seeded: a fixture)

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


def test_a_user_sees_how_busy_their_gpus_were_this_week(chromium, measured, hub):  # noqa: F811
    dave = Visit(chromium, measured, hub, "dave")
    dave.sign_in("/me")
    assert dave.text("#week") == "Your NVIDIA-H100-80GB-HBM3 averaged 2 % this week (peak 2 %)."
    [row] = dave.rows("#my-sessions")
    assert "2 %" in row and "idle GPU" in row and "20.0 GiB" in row
    dave.context.close()
