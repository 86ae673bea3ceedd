"""The GPU agent: a recorded NVML sample set through pynvml, attribution through a local kubelet
pod-resources gRPC server and /proc cgroups, sending to a real portal on real PostgreSQL; no NVML idles
with one line; the buffer's bound; a lost response counts once; an outage loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pynvml
import pytest
import sqlalchemy as sa
from gpu_test_kubelet import KubeletPodResources
from gpu_test_nvml import RECORDED_H100_MIG, RecordedNvml
from gpu_test_support import T0, add_session
from portal_api_support import LiveServer, free_port, make_portal, sha

from portal.agent import nvml
from portal.agent.attribution import attribute, pod_uid_of
from portal.agent.podresources import ListPodResourcesResponse, PodResourcesClient
from portal.agent.runner import Agent, main
from portal.agent.sender import SampleBuffer, Sender
from portal.agent.settings import load_agent_settings
from portal.gpu.models import GpuSample
from portal.gpu.queries import idle_gpu_sessions, node_gpu_now, node_gpu_series, session_gpu_usage
from portal.gpu.settings import load_gpu_settings

pytest_plugins = ["conftest_api"]
REPO = Path(__file__).resolve().parents[2]
AGENT_TOKEN = "agent-token-for-tests-0123456789abcdef"
GPU0, GPU1, GPU2, GPU3 = ("GPU-0b7c6d8e-1f2a-4b3c-9d4e-5f6a7b8c9d00", "GPU-1c8d7e9f-2a3b-4c4d-8e5f-6a7b8c9d0e11",
                          "GPU-2d9e8f0a-3b4c-4d5e-9f6a-7b8c9d0e1f22", "GPU-3a0b9c1d-4e5f-4a6b-8c7d-9e0f1a2b3c55")
MIG_A, MIG_B = "MIG-3e0f9a1b-4c5d-5e6f-a07b-8c9d0e1f2a33", "MIG-4f1a0b2c-5d6e-6f7a-b18c-9d0e1f2a3b44"
UIDS = {"alice": "a11ce000-0000-4000-8000-000000000001", "bob": "b0b00000-0000-4000-8000-000000000002",
        "carol": "ca401000-0000-4000-8000-000000000003", "dave": "da7e0000-0000-4000-8000-000000000004",
        "erin": "e4140000-0000-4000-8000-000000000005"}
KUBELET_PODS = [
    {"namespace": "jhub", "name": "jupyter-alice", "containers": [
        {"name": "notebook", "devices": {"nvidia.com/gpu": [GPU0]}}]},
    {"namespace": "jhub", "name": "jupyter-bob", "containers": [  # time-sliced: replicas of one GPU
        {"name": "notebook", "devices": {"nvidia.com/gpu": [f"{GPU1}::0"]}}]},
    {"namespace": "jhub", "name": "jupyter-carol", "containers": [
        {"name": "notebook", "devices": {"nvidia.com/gpu": [f"{GPU1}::1"]}}]},
    {"namespace": "jhub", "name": "jupyter-dave", "containers": [
        {"name": "notebook", "devices": {"nvidia.com/mig-3g.40gb": [MIG_A]}}]},
    {"namespace": "jhub", "name": "jupyter-erin", "containers": [  # an id that names no NVML UUID
        {"name": "notebook", "devices": {"nvidia.com/mig-2g.20gb": [f"MIG-{GPU2}/2/0"]}}]},
    {"namespace": "kube-system", "name": "coredns", "containers": [
        {"name": "coredns", "devices": {"example.com/other": ["dev0"]}}]},
]


@pytest.fixture
def recorded(monkeypatch):
    made = RecordedNvml()
    made.install(monkeypatch)
    return made


@pytest.fixture
def proc_root(tmp_path):
    """/proc as the host shows it: cgroups of pod processes (systemd and cgroupfs layouts) and one host daemon."""
    root = tmp_path / "proc"
    cgroups = {
        4101: f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UIDS['alice'].replace('-', '_')}"
              ".slice/cri-containerd-0a1b2c.scope",
        4202: f"12:memory:/kubepods/besteffort/pod{UIDS['bob']}/5d6e7f\n11:cpu:/kubepods/besteffort/pod{UIDS['bob']}",
        4203: f"0::/kubepods/besteffort/pod{UIDS['bob']}/5d6e7f",
        4301: f"0::/kubepods.slice/kubepods-pod{UIDS['dave'].replace('-', '_')}.slice/cri-containerd-99.scope",
        4401: f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UIDS['erin'].replace('-', '_')}"
              ".slice/cri-containerd-77.scope",
        999: "0::/system.slice/nvidia-persistenced.service",
    }
    for pid, text in cgroups.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cgroup").write_text(text + "\n")
    return root


@pytest.fixture
def kubelet(tmp_path):
    server = KubeletPodResources(tmp_path / "kubelet.sock", KUBELET_PODS)
    yield server
    server.close()


@pytest.fixture
def live_portal(pg_url, cluster, tmp_path):
    made = make_portal(pg_url, cluster, tmp_path, api_tokens={"agent-gpu01": {"role": "agent",
                                                                              "sha256": sha(AGENT_TOKEN)}})
    made.now = T0 + timedelta(minutes=1)
    with made.engine.begin() as conn:
        for user, uid in UIDS.items():
            add_session(conn, uid=uid, user=user)
    with LiveServer(made.app, "127.0.0.1", free_port()) as live:
        made.url = live.url
        yield made
    made.engine.dispose()


def _settings(tmp_path, portal_url: str, proc_root: Path, **extra) -> object:
    return load_agent_settings({"PORTAL_URL": portal_url, "PORTAL_AGENT_TOKEN": AGENT_TOKEN, "NODE_NAME": "gpu01",
                                "KUBELET_POD_RESOURCES_SOCKET": str(tmp_path / "kubelet.sock"),
                                "AGENT_PROC_ROOT": str(proc_root), **extra})


def test_the_recorded_gpus_read_through_pynvml(recorded):
    readings = nvml.read_devices(nvml.load())
    assert [(r.uuid, r.parent_uuid, r.util_percent, r.power_watts, r.temperature_c) for r in readings] == [
        (GPU0, None, 87.0, 251.34, 47.0), (GPU1, None, 64.0, 180.02, 44.0), (GPU2, None, None, 95.5, 39.0),
        (MIG_A, GPU2, None, None, None), (MIG_B, GPU2, None, None, None), (GPU3, None, 0.0, None, 31.0)]
    assert readings[0].memory_used_bytes == 34359738368 and readings[0].memory_total_bytes == 85899345920
    assert [p.pid for p in readings[1].processes] == [999, 4202, 4203]
    assert readings[2].mig_enabled and readings[2].processes == ()
    assert readings[3].model == "NVIDIA A100-SXM4-80GB MIG 3g.40gb"


def test_the_pod_resources_messages_match_the_kubelets_field_numbers():
    """Bytes as the kubelet sends them, encoded by hand from the upstream v1 api.proto field numbers:
    ListPodResourcesResponse.pod_resources=1; PodResources name=1 namespace=2 containers=3;
    ContainerResources name=1 devices=2 cpu_ids=3 (packed); ContainerDevices resource_name=1 device_ids=2
    topology=3 (a field the agent does not read, skipped)."""
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    devices = field(1, b"nvidia.com/gpu") + field(2, b"GPU-1") + field(2, b"GPU-2") + field(3, field(1, b"\x08\x00"))
    container = field(1, b"notebook") + field(2, devices) + field(3, b"\x00\x01")
    wire = field(1, field(1, b"jupyter-alice") + field(2, b"jhub") + field(3, container))
    from portal.agent.podresources import allocations

    parsed = ListPodResourcesResponse.FromString(wire)
    assert list(parsed.pod_resources[0].containers[0].cpu_ids) == [0, 1]
    assert [(a.namespace, a.pod, a.container, a.resource, a.device_id) for a in allocations(parsed)] == [
        ("jhub", "jupyter-alice", "notebook", "nvidia.com/gpu", "GPU-1"),
        ("jhub", "jupyter-alice", "notebook", "nvidia.com/gpu", "GPU-2")]


def test_gpus_are_attributed_by_the_kubelet_and_shared_ones_and_mig_slices_by_process(
        recorded, kubelet, proc_root, tmp_path):
    client = PodResourcesClient(str(tmp_path / "kubelet.sock"))
    try:
        allocations = client.list()
    finally:
        client.close()
    assert kubelet.calls == 1 and {a.resource for a in allocations} == {
        "nvidia.com/gpu", "nvidia.com/mig-3g.40gb", "nvidia.com/mig-2g.20gb"}
    holders = attribute(nvml.read_devices(nvml.load()), allocations, proc_root=proc_root)
    assert holders == {
        GPU0: [{"namespace": "jhub", "pod": "jupyter-alice", "container": "notebook"}],
        GPU1: [{"pod_uid": UIDS["bob"], "memory_bytes": 17179869184 + 2147483648},  # two processes of bob's
               {"namespace": "jhub", "pod": "jupyter-bob", "container": "notebook", "util_percent": 0.0,
                "memory_bytes": 0},
               {"namespace": "jhub", "pod": "jupyter-carol", "container": "notebook", "util_percent": 0.0,
                "memory_bytes": 0}],
        MIG_A: [{"namespace": "jhub", "pod": "jupyter-dave", "container": "notebook"}],
        MIG_B: [{"pod_uid": UIDS["erin"], "memory_bytes": 4200000000}],
        GPU3: [],
    }
    assert pod_uid_of(999, proc_root=proc_root) is None and pod_uid_of(12345, proc_root=proc_root) is None


def test_the_agent_sends_attributed_samples_that_the_portal_rolls_up_per_session_and_node(
        recorded, kubelet, proc_root, tmp_path, live_portal):
    settings = _settings(tmp_path, live_portal.url, proc_root)
    sender = Sender(settings.portal_url, settings.token, settings.node_name, SampleBuffer(100))
    agent = Agent(settings, nv=nvml.load(), pod_resources=PodResourcesClient(settings.pod_resources_socket),
                  sender=sender, clock=lambda: T0)
    agent.tick()
    assert len(sender.buffer) == 0 and sender.sent_batches == 1
    with live_portal.engine.connect() as conn:
        usage = session_gpu_usage(conn, pod_uids=list(UIDS.values()), now=T0)
        nodes = node_gpu_now(conn, now=T0 + timedelta(seconds=5))
    by_user = {user: usage[uid] for user, uid in UIDS.items()}
    assert {u: (s.avg_util_percent, s.avg_memory_bytes) for u, s in by_user.items()} == {
        "alice": (87.0, 34359738368), "bob": (64.0, 19327352832), "carol": (0.0, 0),
        "dave": (None, 8589934592), "erin": (None, 4200000000)}
    # busy: GPU0 and GPU1 by their utilisation, GPU2 (MIG mode, none of its own) because its slices are active
    assert [(n.node, n.gpus_total, n.gpus_allocated, n.gpus_busy) for n in nodes] == [("gpu01", 4, 3, 3)]


def test_without_the_kubelet_the_agent_attributes_by_process_and_keeps_going(recorded, proc_root, tmp_path,
                                                                              live_portal, caplog):
    settings = _settings(tmp_path, live_portal.url, proc_root)  # nothing listens on the socket
    sender = Sender(settings.portal_url, settings.token, settings.node_name, SampleBuffer(100))
    times = iter([T0, T0 + timedelta(seconds=10)])
    agent = Agent(settings, nv=nvml.load(), pod_resources=PodResourcesClient(settings.pod_resources_socket, timeout=1),
                  sender=sender, clock=lambda: next(times))
    agent.tick()
    agent.tick()
    assert sender.sent_batches == 2
    assert sum("pod-resources" in r.getMessage() for r in caplog.records) == 1  # one line per outage
    with live_portal.engine.connect() as conn:
        usage = session_gpu_usage(conn, pod_uids=[UIDS["alice"], UIDS["carol"]], now=T0)
    assert usage[UIDS["alice"]].samples == 2 and UIDS["carol"] not in usage  # carol runs nothing: unknown


def test_without_nvml_the_agent_logs_one_line_and_idles_until_stopped(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "AGENT_"))},
           "PYTHONPATH": str(REPO), "PORTAL_URL": "http://127.0.0.1:9", "PORTAL_AGENT_TOKEN": AGENT_TOKEN,
           "NODE_NAME": "cpu07"}
    process = subprocess.Popen([sys.executable, "-m", "portal.agent"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        assert process.poll() is None, process.communicate()  # idling, not exited (no crash loop)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no GPU to watch on node cpu07" in lines[0] and "NVML" in lines[0], err
    assert AGENT_TOKEN not in err + out


def test_bad_agent_settings_name_the_variable(tmp_path):
    from portal.agent.settings import AgentSettingsError

    with pytest.raises(AgentSettingsError, match="PORTAL_URL is not set.*NODE_NAME is not set"):
        load_agent_settings({"PORTAL_AGENT_TOKEN": "x"})
    with pytest.raises(AgentSettingsError, match="AGENT_INTERVAL_SECONDS must be a number"):
        load_agent_settings({"PORTAL_URL": "http://p", "NODE_NAME": "n", "PORTAL_AGENT_TOKEN": "x",
                             "AGENT_INTERVAL_SECONDS": "ten"})
    (tmp_path / "token").write_text("from-a-secret\n")
    made = load_agent_settings({"PORTAL_URL": "http://p:29781/", "NODE_NAME": "n",
                                "PORTAL_AGENT_TOKEN_FILE": str(tmp_path / "token")})
    assert made.token == "from-a-secret" and made.portal_url == "http://p:29781"
    assert made.pod_resources_socket == "/var/snap/microk8s/common/var/lib/kubelet/pod-resources/kubelet.sock"
    assert "from-a-secret" not in repr(made)


def test_the_buffer_keeps_the_newest_samples_and_counts_what_it_dropped():
    buffer = SampleBuffer(3)
    buffer.add([{"uuid": "GPU-a", "at": f"t{i}"} for i in range(5)])
    assert len(buffer) == 3 and buffer.dropped == 2
    assert [s["at"] for s in buffer.oldest(10)] == ["t2", "t3", "t4"]


def test_the_buffer_keeps_a_round_whole_in_one_batch_and_drops_whole_rounds():
    def round_of(at: str) -> list[dict]:  # a GPU in MIG mode and its two slices, one instant
        return [{"uuid": uuid, "at": at} for uuid in ("GPU-m", "MIG-m1", "MIG-m2")]

    buffer = SampleBuffer(7)
    for at in ("t0", "t1", "t2"):
        buffer.add(round_of(at))
    assert buffer.dropped == 3 and [s["at"] for s in buffer.oldest(10)] == ["t1"] * 3 + ["t2"] * 3  # not 2 of t0
    assert [s["at"] for s in buffer.oldest(5)] == ["t1"] * 3  # the batch ends where t2's round would be cut
    assert len(buffer.oldest(2)) == 2  # a round larger than a batch goes in pieces
    tiny = SampleBuffer(2)
    tiny.add(round_of("t0"))  # a round larger than the buffer keeps its newest samples, as before
    assert [s["uuid"] for s in tiny.oldest(10)] == ["MIG-m1", "MIG-m2"] and tiny.dropped == 1


def _samples(count: int, start=T0) -> list[dict]:
    return [{"at": (start + timedelta(seconds=10 * i)).isoformat(), "uuid": GPU0, "parent_uuid": None,
             "model": "NVIDIA A100-SXM4-80GB", "util_percent": 50.0, "memory_used_bytes": 1, "memory_total_bytes": 2,
             "power_watts": None, "temperature_c": None,
             "holders": [{"namespace": "jhub", "pod": "jupyter-alice", "container": "notebook"}]}
            for i in range(count)]


class LosesResponses(httpx.HTTPTransport):
    """The request reaches the portal, the answer never comes back (a connection cut after the send)."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses = losses
        self.requests = 0

    def handle_request(self, request):
        response = super().handle_request(request)
        self.requests += 1
        response.read()
        if self.losses:
            self.losses -= 1
            raise httpx.ReadError("connection reset by peer")
        return response


def test_a_batch_whose_answer_was_lost_is_sent_again_and_counted_once(live_portal):
    transport = LosesResponses(losses=1)
    sender = Sender(live_portal.url, AGENT_TOKEN, "gpu01", SampleBuffer(100), transport=transport)
    sender.buffer.add(_samples(6))
    assert sender.flush() is False and len(sender.buffer) == 6  # not known to have arrived: kept
    assert sender.flush() is True and len(sender.buffer) == 0
    assert transport.requests == 2 and sender.duplicates == 6
    with live_portal.engine.connect() as conn:
        assert session_gpu_usage(conn, pod_uids=[UIDS["alice"]])[UIDS["alice"]].samples == 6
    sender.buffer.add(_samples(2, start=T0 + timedelta(minutes=5)))
    assert sender.flush() is True and transport.requests == 3 and sender.duplicates == 6  # sent ones never again


def test_a_portal_outage_is_buffered_within_the_bound_and_sent_when_it_returns(live_portal):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sender = Sender(down, AGENT_TOKEN, "gpu01", SampleBuffer(8), max_batch=3)
    for minute in range(3):
        sender.buffer.add(_samples(4, start=T0 + timedelta(minutes=minute)))
        assert sender.flush() is False
    assert len(sender.buffer) == 8 and sender.buffer.dropped == 4  # the oldest round went first
    sender.close()
    back = Sender(live_portal.url, AGENT_TOKEN, "gpu01", sender.buffer, max_batch=3)
    assert back.flush() is True and back.sent_batches == 3 and len(back.buffer) == 0
    with live_portal.engine.connect() as conn:
        assert session_gpu_usage(conn, pod_uids=[UIDS["alice"]])[UIDS["alice"]].samples == 8


def test_the_agent_program_samples_until_stopped_and_sends_what_it_holds(recorded, kubelet, proc_root, tmp_path,
                                                                          live_portal):
    live_portal.now = T0 + timedelta(days=3650)  # the agent stamps samples with the real clock
    (tmp_path / "agent-token").write_text(AGENT_TOKEN + "\n")
    env = {"PORTAL_URL": live_portal.url, "PORTAL_AGENT_TOKEN_FILE": str(tmp_path / "agent-token"),
           "NODE_NAME": "gpu01", "KUBELET_POD_RESOURCES_SOCKET": str(tmp_path / "kubelet.sock"),
           "AGENT_PROC_ROOT": str(proc_root), "AGENT_INTERVAL_SECONDS": "1"}
    stop, result = threading.Event(), {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", main(env, stop)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    rounds = 0
    while time.monotonic() < deadline and rounds < 12:  # two rounds of the 6 devices
        time.sleep(0.2)
        with live_portal.engine.connect() as conn:
            rounds = conn.execute(sa.select(sa.func.count()).select_from(GpuSample.__table__)).scalar_one()
    stop.set()
    thread.join(15)
    assert not thread.is_alive() and result["rc"] == 0
    assert rounds >= 12 and kubelet.calls >= 2
    assert recorded.initialised is False  # NVML shut down on the way out


def test_a_round_that_fails_is_logged_and_the_next_one_runs(recorded, kubelet, proc_root, tmp_path, live_portal,
                                                             monkeypatch, caplog):
    settings = _settings(tmp_path, live_portal.url, proc_root, AGENT_INTERVAL_SECONDS="1")
    sender = Sender(settings.portal_url, settings.token, settings.node_name, SampleBuffer(100))
    stop = threading.Event()
    rounds = iter([T0, T0 + timedelta(seconds=1)])
    real_read = nvml.read_devices

    def flaky(nv, calls=[], **options):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the driver hiccupped")
        stop.set()
        return real_read(nv, **options)

    monkeypatch.setattr(nvml, "read_devices", flaky)
    agent = Agent(settings, nv=nvml.load(), pod_resources=PodResourcesClient(settings.pod_resources_socket),
                  sender=sender, clock=lambda: next(rounds))
    agent.run(stop)
    assert sender.sent_batches == 1 and len(sender.buffer) == 0
    assert any("a sampling round failed" in r.getMessage() for r in caplog.records)


# -- MIG slices: GPM utilisation (Hopper), or the process signal (A100) ------------------------------------
H100, MIG_F, MIG_G = ("GPU-5e2f1a3b-6c7d-4e8f-9a0b-1c2d3e4f5a66", "MIG-6f3a2b4c-7d8e-5f9a-a1b2-2d3e4f5a6b77",
                      "MIG-7a4b3c5d-8e9f-6a0b-b2c3-3e4f5a6b7c88")
H100_UIDS = {"frank": "f4a4c000-0000-4000-8000-000000000006", "gina": "91a40000-0000-4000-8000-000000000007"}


@pytest.fixture
def recorded_h100(monkeypatch):
    made = RecordedNvml(RECORDED_H100_MIG)
    made.install(monkeypatch)
    return made


@pytest.fixture
def h100_node(tmp_path, proc_root):
    """The kubelet and /proc of the H100 node: frank's and gina's pods each hold one 3g.40gb slice."""
    for pid, user in ((5101, "frank"), (5201, "gina")):
        (proc_root / str(pid)).mkdir()
        (proc_root / str(pid) / "cgroup").write_text(
            f"0::/kubepods.slice/kubepods-pod{H100_UIDS[user].replace('-', '_')}.slice/cri-containerd-1.scope\n")
    pods = [{"namespace": "jhub", "name": f"jupyter-{user}", "containers": [
        {"name": "notebook", "devices": {"nvidia.com/mig-3g.40gb": [mig]}}]}
        for user, mig in (("frank", MIG_F), ("gina", MIG_G))]
    server = KubeletPodResources(tmp_path / "kubelet.sock", pods)
    yield server
    server.close()


def _mig_rows(readings):
    return [(r.uuid, r.util_percent, r.active) for r in readings if r.parent_uuid]


def test_mig_slices_read_their_sm_utilisation_through_gpm_from_the_second_round(recorded_h100):
    from portal.agent.gpm import GpmSampler

    nv = nvml.load()
    gpm = GpmSampler(nv)
    # the first round has no interval yet: the process signal (both slices hold a process)
    assert _mig_rows(nvml.read_devices(nv, gpm=gpm)) == [(MIG_F, None, True), (MIG_G, None, True)]
    # then GPM's SM utilisation: gina's slice holds 6 GB but computes nothing, and says so
    assert _mig_rows(nvml.read_devices(nv, gpm=gpm)) == [(MIG_F, 72.5, None), (MIG_G, 0.0, None)]
    assert _mig_rows(nvml.read_devices(nv, gpm=gpm)) == [(MIG_F, 68.0, None), (MIG_G, 0.0, None)]
    assert len(recorded_h100.gpm_samples) == 2  # one held per slice, the older ones freed
    gpm.close()
    assert recorded_h100.gpm_samples == {} and recorded_h100.gpm_freed == 6
    assert nvml.read_devices(nv)[0].util_percent is None  # the MIG-mode GPU itself reads none


def test_without_gpm_a_mig_slice_is_active_while_a_process_holds_its_memory(recorded):
    nv = nvml.load()
    from portal.agent.gpm import GpmSampler

    gpm = GpmSampler(nv)  # the A100 answers isSupportedDevice 0: no GPM sample is taken
    assert _mig_rows(nvml.read_devices(nv, gpm=gpm)) == [(MIG_A, None, True), (MIG_B, None, True)]
    assert recorded.gpm_rounds == {}
    # above 4.2 GB (erin's process) and below 8.5 GB (dave's): erin's slice counts as idle
    threshold = load_agent_settings({"PORTAL_URL": "http://p", "NODE_NAME": "n", "PORTAL_AGENT_TOKEN": "x",
                                     "AGENT_MIG_ACTIVE_MEMORY_MIB": "6000"}).mig_active_memory_mib
    rows = _mig_rows(nvml.read_devices(nv, gpm=gpm, active_memory_bytes=threshold * 2**20))
    assert rows == [(MIG_A, None, True), (MIG_B, None, False)]
    recorded.data["devices"][2]["mig_devices"][0]["processes"] = []  # dave's kernel let go of the slice
    assert _mig_rows(nvml.read_devices(nv, gpm=gpm))[0] == (MIG_A, None, False)
    assert [r.active for r in nvml.read_devices(nv) if not r.parent_uuid] == [None] * 4  # whole GPUs: utilisation


def _run_agent_for(agent, start, minutes: int) -> datetime:
    at = start
    for minute in range(minutes + 1):
        at = start + timedelta(minutes=minute)
        agent.clock = lambda at=at: at
        agent.tick()
    return at


def _mig_agent(settings, sender):
    return Agent(settings, nv=nvml.load(), pod_resources=PodResourcesClient(settings.pod_resources_socket),
                 sender=sender)


def test_an_h100_mig_session_that_computes_nothing_is_flagged_idle_and_one_that_computes_is_not(
        recorded_h100, h100_node, proc_root, tmp_path, live_portal):
    with live_portal.engine.begin() as conn:
        for user, uid in H100_UIDS.items():
            add_session(conn, uid=uid, user=user)
    live_portal.now = T0 + timedelta(hours=3)
    settings = _settings(tmp_path, live_portal.url, proc_root)
    sender = Sender(settings.portal_url, settings.token, settings.node_name, SampleBuffer(1000))
    last = _run_agent_for(_mig_agent(settings, sender), T0, 125)  # a sample a minute for 2 h 5 min
    assert len(sender.buffer) == 0
    gpu = load_gpu_settings()
    with live_portal.engine.connect() as conn:
        flagged = idle_gpu_sessions(conn, now=last + timedelta(seconds=30), settings=gpu)
        usage = session_gpu_usage(conn, pod_uids=list(H100_UIDS.values()), now=last, settings=gpu)
    # idle since the first round, which had no GPM interval yet and counted as busy by gina's process
    assert [(s.user_name, s.idle_since) for s in flagged] == [("gina", T0)]
    frank = usage[H100_UIDS["frank"]]
    assert frank.idle_gpu is False and frank.peak_util_percent == 80.25 and frank.samples == 126
    assert usage[H100_UIDS["gina"]].avg_util_percent == 0.0
    with live_portal.engine.connect() as conn:  # frank's slice computes: the H100 (no utilisation of its own) is busy
        [node] = node_gpu_now(conn, now=last, settings=gpu)
        series = node_gpu_series(conn, start=T0, end=T0 + timedelta(hours=2), bucket_seconds=3600)
    assert (node.gpus_total, node.gpus_allocated, node.gpus_busy, node.avg_util_percent) == (1, 1, 1, None)
    assert [(p.gpus_total, p.gpus_busy) for p in series] == [(1, 1.0), (1, 1.0)]


def test_an_a100_mig_session_whose_kernel_let_go_of_the_slice_is_flagged_idle(
        recorded, kubelet, proc_root, tmp_path, live_portal):
    live_portal.now = T0 + timedelta(hours=3)
    recorded.data["devices"][2]["mig_devices"][0]["processes"] = []  # dave's slice: no process any more
    settings = _settings(tmp_path, live_portal.url, proc_root)
    sender = Sender(settings.portal_url, settings.token, settings.node_name, SampleBuffer(5000))
    last = _run_agent_for(_mig_agent(settings, sender), T0, 125)
    assert len(sender.buffer) == 0
    gpu = load_gpu_settings()
    with live_portal.engine.connect() as conn:
        flagged = idle_gpu_sessions(conn, now=last + timedelta(seconds=30), settings=gpu)
        usage = session_gpu_usage(conn, pod_uids=[UIDS["erin"]], now=last, settings=gpu)
    # dave's slice (named by the kubelet) has held no process for 2 h 5 min; erin's holds one: active, not idle
    # (carol's idle share of a time-sliced GPU is flagged as before)
    assert sorted((s.user_name, s.idle_since) for s in flagged) == [("carol", T0), ("dave", T0)]
    assert usage[UIDS["erin"]].idle_gpu is False and usage[UIDS["erin"]].idle_since == last
    raw = GpuSample.__table__
    with live_portal.engine.connect() as conn:
        stored = dict(conn.execute(sa.select(raw.c.gpu_uuid, raw.c.active).where(raw.c.sampled_at == last)).all())
    assert stored[MIG_A] is False and stored[MIG_B] is True and stored[GPU0] is None
    assert stored[GPU2] is True  # the A100 in MIG mode: erin's slice is active, so the GPU is busy
    with live_portal.engine.connect() as conn:
        [node] = node_gpu_now(conn, now=last, settings=gpu)
    assert node.gpus_total == 4 and node.gpus_busy == 3  # GPU3 (0 %) is the idle one
