"""The pre-spawn limit check against a real HTTP portal started by the test."""

import logging
import socket
import time

import pytest

from jhub_capacity import Request
from jhub_config import ConfigError
from jhub_limits import PortalUnavailable, fetch_limits, refusal
from jhub_profiles import CPU_SLUG, gpu_profile_slug
from jhub_quantity import GIB
from jhub_spawn_check import SpawnRefused
from hubtest_cluster import L40S, pod, standard_cluster
from hubtest_configs import configured, jhub_cfg, new_spawner, spawn_until_pod

TOKEN = "portal-secret-token-123"
L40S_SLUG = gpu_profile_slug(L40S)


def answer(cpu=None, mem=None, gpus=None, budget=None, used=0.0):
    remaining = None if budget is None else budget - used
    return {"user": "alice", "limits": {"cpu": cpu, "memoryGiB": mem, "gpus": gpus, "gpuHoursMonthly": budget},
            "used": {"gpuHoursThisMonth": used}, "remaining": {"gpuHours": remaining}}


def portal_cfg(url, **extra):
    return {"enabled": True, "url": url, "tokenEnv": "JHUB_PORTAL_TOKEN", "failOpen": False, "timeoutSeconds": 1,
            "verifyTls": True, "caFile": "", **extra}


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.asyncio
async def test_fetch_sends_the_bearer_token_for_the_quoted_username(tornado_client, server, monkeypatch):
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    server.route("GET", "/api/limits/*", lambda req: (200, answer(cpu=16)))
    got = await fetch_limits("Alice.Smith a/b", portal_cfg(server.url))
    assert got["limits"]["cpu"] == 16
    (req,) = server.requests
    assert req["path"] == "/api/limits/Alice.Smith%20a%2Fb"
    assert req["headers"]["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("status,body", [(500, {"detail": "boom"}), (401, {"detail": "bad token"}), (200, ["x"])])
@pytest.mark.asyncio
async def test_bad_answers_count_as_unavailable(tornado_client, server, monkeypatch, status, body):
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    server.route("GET", "/api/limits/*", lambda req: (status, body))
    with pytest.raises(PortalUnavailable) as err:
        await fetch_limits("alice", portal_cfg(server.url))
    assert TOKEN not in str(err.value)


@pytest.mark.asyncio
async def test_down_and_slow_portals_fail_within_the_timeout(tornado_client, server, monkeypatch):
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    with pytest.raises(PortalUnavailable, match="ConnectionRefused|Errno 111|Connection refused|Could not connect"):
        await fetch_limits("alice", portal_cfg(closed_port_url()))
    server.route("GET", "/api/limits/*", lambda req: (200, answer(), 3))
    started = time.monotonic()
    with pytest.raises(PortalUnavailable, match="timed out|Timeout"):
        await fetch_limits("alice", portal_cfg(server.url, timeoutSeconds=0.5))
    assert time.monotonic() - started < 2


def test_refusals_name_the_limit_and_what_is_left():
    asked = Request(cpu=8, memory=32 * GIB, gpus=2)
    others = Request(cpu=12, memory=16 * GIB, gpus=1)
    assert refusal(answer(), asked, others) is None
    assert refusal(answer(cpu=20, mem=48, gpus=3, budget=100, used=50), asked, others) is None
    assert refusal(answer(cpu=16), asked, others) == (
        "CPU limit reached: you may use 16 cores across your running servers; 12 are in use, "
        "so 4 cores are left, and this server asks for 8.")
    assert "memory limit reached" in refusal(answer(mem=40), asked, others)
    assert "so 1 GPUs are left, and this server asks for 2" in refusal(answer(gpus=2), asked, others)
    assert refusal(answer(budget=100, used=100), asked, others) == (
        "GPU-hour budget used up: 100 of 100 GPU-hours used this month, 0 left. "
        "Start a CPU-only server, or ask an admin.")
    assert refusal(answer(budget=100, used=100), Request(cpu=1, memory=GIB), Request()) is None


def money_answer(spent, budget=500.0, cpu_core=0.0, memory_gib=0.0, gpu=4.0):
    return {**answer(), "limits": {**answer()["limits"], "budgetMonthly": budget},
            "used": {"gpuHoursThisMonth": 0.0, "costThisMonth": spent},
            "remaining": {"gpuHours": None, "budget": None if budget is None else max(budget - spent, 0.0)},
            "currency": "EUR", "pricesPerHour": {"gpu": gpu, "cpuCore": cpu_core, "memoryGiB": memory_gib}}


def test_a_spent_money_budget_refuses_servers_that_add_cost():
    gpu_server, cpu_server = Request(cpu=8, memory=32 * GIB, gpus=1), Request(cpu=2, memory=8 * GIB)
    assert refusal(money_answer(spent=499.99), gpu_server, Request()) is None  # 0.01 left
    assert refusal(money_answer(spent=512.3), gpu_server, Request()) == (
        "Money budget used up: 512.30 of 500.00 EUR spent this month, 0 EUR left. "
        "Start a CPU-only server, or ask an admin.")
    assert refusal(money_answer(spent=512.3), cpu_server, Request()) is None  # CPU-hours cost nothing here
    assert refusal(money_answer(spent=512.3, gpu=0.0), gpu_server, Request()) is None  # nor do GPUs at price 0
    assert refusal(money_answer(spent=512.3, budget=None), gpu_server, Request()) is None  # no money budget
    priced_cpu = "Money budget used up: 512.30 of 500.00 EUR spent this month, 0 EUR left. Every server costs money"
    assert refusal(money_answer(spent=512.3, cpu_core=0.05), cpu_server, Request()).startswith(priced_cpu)
    assert refusal(money_answer(spent=512.3, memory_gib=0.01), gpu_server, Request()).startswith(priced_cpu)
    assert refusal(money_answer(spent=0.0, budget=0.0), gpu_server, Request()).startswith(
        "Money budget used up: 0.00 of 0.00 EUR spent")


def test_a_portal_without_prices_is_taken_to_price_gpus_only():
    old = money_answer(spent=600.0)
    del old["pricesPerHour"], old["currency"]
    assert refusal(old, Request(cpu=1, memory=GIB, gpus=1), Request()) == (
        "Money budget used up: 600.00 of 500.00 spent this month, 0 left. Start a CPU-only server, or ask an admin.")
    assert refusal(old, Request(cpu=1, memory=GIB), Request()) is None


@pytest.mark.asyncio
async def test_spawn_over_the_cpu_limit_counts_the_users_other_servers(kube_api, server, monkeypatch):
    nodes, pods = standard_cluster()
    pods.append(pod("jupyter-alice-smith---2ece8250--other", "cpu-1", cpu="8", memory="8Gi", user="Alice.Smith"))
    pods.append(pod("jupyter-someone-else", "cpu-1", cpu="1", memory="1Gi", user="Bob"))
    kube_api.cluster.update(nodes=nodes, pods=pods)
    server.route("GET", "/api/limits/*", lambda req: (200, answer(cpu=16, gpus=4)))
    cfg = jhub_cfg(portal=portal_cfg(server.url))
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    c = configured(cfg, kube_api.url, env={"JHUB_PORTAL_TOKEN": TOKEN})
    spawner = new_spawner(c, "Alice.Smith")
    with pytest.raises(SpawnRefused) as refused:
        await spawn_until_pod(spawner, {"profile": L40S_SLUG, "gpus": "1"})
    assert refused.value.jupyterhub_message == (
        "CPU limit reached: you may use 16 cores across your running servers; 8 are in use, "
        "so 8 cores are left, and this server asks for 15.5.")
    assert server.requests[-1]["path"] == "/api/limits/Alice.Smith"
    got = await spawn_until_pod(new_spawner(c, "Alice.Smith"), {"profile": CPU_SLUG, "size": "8cpu-32gib"})
    assert got["spec"]["containers"][0]["resources"]["requests"]["cpu"] == 8.0


@pytest.mark.parametrize("fail_open", [False, True])
@pytest.mark.asyncio
async def test_portal_outage_follows_fail_open_and_is_logged(tornado_client, kube_api, caplog, monkeypatch, fail_open):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = standard_cluster()
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    cfg = jhub_cfg(portal=portal_cfg(closed_port_url(), failOpen=fail_open))
    spawner = new_spawner(configured(cfg, kube_api.url, env={"JHUB_PORTAL_TOKEN": TOKEN}), "gina")
    with caplog.at_level(logging.WARNING):
        if fail_open:
            got = await spawn_until_pod(spawner, {"profile": CPU_SLUG})
            assert got["metadata"]["name"] == "jupyter-gina"
        else:
            with pytest.raises(SpawnRefused, match="usage portal that checks your limits is not answering"):
                await spawn_until_pod(spawner, {"profile": CPU_SLUG})
    logged = caplog.text
    assert ("failOpen is true: letting gina spawn" if fail_open else "failOpen is false: refusing gina") in logged
    assert TOKEN not in logged


def test_missing_portal_token_stops_the_hub_at_start(kube_api):
    with pytest.raises(ConfigError, match="custom.jhub.portal.tokenEnv: environment variable JHUB_PORTAL_TOKEN"):
        configured(jhub_cfg(portal=portal_cfg("http://portal:8000")), kube_api.url, env={})
