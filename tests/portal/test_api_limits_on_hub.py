"""The money budget at spawn, end to end: the hub's own limit hook (jhub_setup's pre-spawn hook in KubeSpawner,
as test_hub_limits.py runs it) asks the real portal, served on a real socket over PostgreSQL, for a user whose
cost this month is past their budgetMonthly, and refuses the servers that would add cost."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest
from portal_api_support import ADMIN_TOKEN, HUB_TOKEN, LiveServer, free_port
from tests.support.kubeconfig import pointed_at as kubeconfig_pointed_at

HUB_TESTS = Path(__file__).resolve().parents[1] / "hub"
for _path in (HUB_TESTS, HUB_TESTS.parents[1] / "hub"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
from hubtest_cluster import L40S, standard_cluster  # noqa: E402
from hubtest_configs import configured, jhub_cfg, new_spawner, spawn_until_pod  # noqa: E402
from hubtest_kube import KubeApi  # noqa: E402
from jhub_profiles import CPU_SLUG, gpu_profile_slug  # noqa: E402
from jhub_spawn_check import SpawnRefused  # noqa: E402

pytest_plugins = ["conftest_api"]
NO_LIMITS = {"cpu": None, "memoryGiB": None, "gpus": None, "gpuHoursMonthly": None}
GPU_SERVER = {"profile": gpu_profile_slug(L40S), "gpus": "1"}


KUBECONFIG = ("apiVersion: v1\nkind: Config\ncurrent-context: test\n"  # the token tests/hub's KubeApi expects
              "clusters: [{name: test, cluster: {server: 'http://127.0.0.1:9'}}]\n"
              "users: [{name: test, user: {token: test-token}}]\n"
              "contexts: [{name: test, context: {cluster: test, user: test}}]\n")


@pytest.fixture(scope="module", autouse=True)
def kubeconfig(tmp_path_factory):
    """KubeSpawner loads a kubeconfig when it is made (the host is then the test's KubeApi); for this module
    only (tests/support/kubeconfig.py)."""
    with kubeconfig_pointed_at(tmp_path_factory.mktemp("jhub-limits") / "kubeconfig", KUBECONFIG) as path:
        yield path


@pytest.fixture
def hub_and_portal(portal, monkeypatch):
    kube = KubeApi()
    kube.start()
    kube.cluster["nodes"], kube.cluster["pods"] = standard_cluster()
    live = LiveServer(portal.app, "127.0.0.1", free_port()).__enter__()
    portal_cfg = {"enabled": True, "url": live.url, "tokenEnv": "JHUB_PORTAL_TOKEN", "failOpen": False,
                  "timeoutSeconds": 5, "verifyTls": True, "caFile": ""}
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", HUB_TOKEN)
    c = configured(jhub_cfg(portal=portal_cfg), kube.url, env={"JHUB_PORTAL_TOKEN": HUB_TOKEN})
    try:
        yield c, portal
    finally:
        live.__exit__(None, None, None)
        kube.stop()


def spend(portal, user, *, budget, gpu_hours):
    admin = portal.client(token=ADMIN_TOKEN)
    assert admin.put(f"/api/limits/{user}", json={**NO_LIMITS, "budgetMonthly": budget}).status_code == 200
    portal.add_session(user, start=portal.now - timedelta(hours=gpu_hours + 1), end=portal.now - timedelta(hours=1))


@pytest.mark.asyncio
async def test_a_spent_money_budget_refuses_gpu_servers_and_names_the_spending(hub_and_portal):
    c, portal = hub_and_portal
    spend(portal, "alice", budget=100.0, gpu_hours=30)  # 30 GPU-hours at 4 USD: 120 USD of 100
    spend(portal, "bob", budget=500.0, gpu_hours=30)
    with pytest.raises(SpawnRefused) as refused:
        await spawn_until_pod(new_spawner(c, "alice"), GPU_SERVER)
    assert refused.value.jupyterhub_message == (
        "Money budget used up: 120.00 of 100.00 USD spent this month, 0 USD left. "
        "Start a CPU-only server, or ask an admin.")
    got = await spawn_until_pod(new_spawner(c, "alice"), {"profile": CPU_SLUG})  # CPU-hours cost nothing here
    assert got["metadata"]["name"] == "jupyter-alice"
    got = await spawn_until_pod(new_spawner(c, "bob"), GPU_SERVER)  # 380 USD left
    assert got["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.asyncio
async def test_once_cpu_hours_are_priced_a_spent_budget_refuses_cpu_servers_too(hub_and_portal):
    c, portal = hub_and_portal
    spend(portal, "alice", budget=100.0, gpu_hours=30)
    change = {"gpu_model": "", "gpu_hour": 4.0, "cpu_core_hour": 0.25, "memory_gib_hour": 0.0}
    assert portal.client(token=ADMIN_TOKEN).post("/api/rates", json=change).status_code == 200
    with pytest.raises(SpawnRefused) as refused:
        await spawn_until_pod(new_spawner(c, "alice"), {"profile": CPU_SLUG})
    assert refused.value.jupyterhub_message.startswith("Money budget used up: ")
    assert refused.value.jupyterhub_message.endswith(
        " USD spent this month, 0 USD left. Every server costs money at today's prices: ask an admin to raise your "
        "budget.")
