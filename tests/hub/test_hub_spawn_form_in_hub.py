"""The spawn form in a real `jupyterhub` process with KubeSpawner and the node/pod watch (profiles.watch)."""

import json
import time

import pytest

from hubtest_cluster import gpu_operator_cluster, pod
from hubtest_configs import jhub_cfg
from hubtest_hub import Hub, header
from test_hub_native_admins import sign_in

PASSWORD = "Form-Admin-Pw-4242"


@pytest.fixture
def hub_and_kube(tmp_path, kube_api):
    kube_api.watch_seconds = 120
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = gpu_operator_cluster()
    cfg = jhub_cfg(auth={"mode": "native", "adminUsers": ["admin"]},
                   profiles={**jhub_cfg()["profiles"], "watch": True})
    before = f'c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"\nc.KubeSpawner.k8s_api_host = {kube_api.url!r}'
    running = Hub(tmp_path, cfg, env={"JHUB_NATIVE_ADMIN_PASSWORDS": json.dumps({"admin": PASSWORD})},
                  before=before)
    yield running, kube_api
    running.stop()


def spawn_page(hub, cookies):
    status, _, body = hub.request("GET", "/hub/spawn", headers={"Cookie": cookies})
    assert status == 200, f"{status}\n{hub.log()[-3000:]}"
    return body.decode()


def test_the_hub_renders_the_pools_from_its_watch_without_api_calls(hub_and_kube):
    hub, kube = hub_and_kube
    status, headers = sign_in(hub, "admin", PASSWORD)
    assert status == 302, hub.log()[-3000:]
    cookies = "; ".join(c.split(";", 1)[0] for c in header(headers, "Set-Cookie"))
    page = spawn_page(hub, cookies)
    assert "NVIDIA A100-SXM4-80GB, MIG 1g.10gb slice: 5 of 7 free" in page
    assert "NVIDIA H100-80GB-HBM3, shared (time-sliced, 4 per GPU): 3 of 8 free" in page
    deadline = time.monotonic() + 20
    while sum(1 for r in kube.requests if "watch=true" in r["query"].lower()) < 2:
        assert time.monotonic() < deadline, hub.log()[-3000:]
        time.sleep(0.05)
    lists = kube.list_calls()
    for _ in range(3):
        spawn_page(hub, cookies)
    assert kube.list_calls() == lists
    kube.publish("pods", "ADDED", pod("slice-3", "a100-mixed", devices={"nvidia.com/mig-1g.10gb": 1}))
    while "MIG 1g.10gb slice: 4 of 7 free" not in spawn_page(hub, cookies):
        assert time.monotonic() < deadline + 10, "the watched pod never reached the form"
        time.sleep(0.1)
    assert kube.list_calls() == lists
