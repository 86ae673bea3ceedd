"""The agent's loop: read the GPUs, attribute them, buffer, send; and its start (``main``)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType

from portal.agent import nvml
from portal.agent.attribution import attribute
from portal.agent.gpm import GpmSampler
from portal.agent.nvml import DeviceReading, NvmlUnavailable
from portal.agent.podresources import PodResourcesClient, PodResourcesUnavailable
from portal.agent.sender import SampleBuffer, Sender
from portal.agent.settings import AgentSettings, AgentSettingsError, load_agent_settings

log = logging.getLogger("portal.agent")


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_samples(readings: list[DeviceReading], holders: dict[str, list[dict]], *, at: datetime) -> list[dict]:
    """The batch form of one round of readings (portal.gpu.schema.SampleIn)."""
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return [{"at": stamp, "uuid": r.uuid, "parent_uuid": r.parent_uuid, "model": r.model,
             "util_percent": r.util_percent, "memory_used_bytes": r.memory_used_bytes,
             "memory_total_bytes": r.memory_total_bytes, "power_watts": r.power_watts,
             "temperature_c": r.temperature_c, "active": r.active, "holders": holders.get(r.uuid, [])}
            for r in readings]


class Agent:
    def __init__(self, settings: AgentSettings, *, nv: ModuleType, pod_resources, sender: Sender,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings, self.nv, self.pod_resources, self.sender, self.clock = settings, nv, pod_resources, sender, clock
        self._kubelet_failing = False
        self.gpm = GpmSampler(nv)

    def _allocations(self):
        try:
            allocations = self.pod_resources.list(resource_prefix=self.settings.resource_prefix)
        except PodResourcesUnavailable as exc:
            if not self._kubelet_failing:
                log.warning("%s; attributing GPUs by process only until it answers", exc)
            self._kubelet_failing = True
            return None
        if self._kubelet_failing:
            log.info("the kubelet's pod-resources API answers again")
        self._kubelet_failing = False
        return allocations

    def tick(self) -> None:
        """One round: sample every device, attribute, buffer, and send what the buffer holds."""
        at = self.clock()
        try:
            readings = nvml.read_devices(self.nv, gpm=self.gpm,
                                         active_memory_bytes=self.settings.mig_active_memory_mib * 2**20)
        except self.nv.NVMLError as exc:
            log.warning("cannot read the GPUs this round: %s", exc)
            readings = []
        if readings:
            holders = attribute(readings, self._allocations(), proc_root=self.settings.proc_root)
            self.sender.buffer.add(to_samples(readings, holders, at=at))
        self.sender.flush()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # one bad round (a driver hiccup, an odd answer) must not restart the pod
                log.exception("a sampling round failed; trying again next interval")
            stop.wait(max(0.0, self.settings.interval_seconds - (time.monotonic() - started)))
        self.sender.flush()  # a last try, so a clean stop loses nothing the portal can take
        self.gpm.close()


def main(env: dict[str, str] | None = None, stop: threading.Event | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    try:
        settings = load_agent_settings(env)
    except AgentSettingsError as exc:
        log.error("%s", exc)
        return 2
    try:
        nv = nvml.load()
    except NvmlUnavailable as exc:
        log.info("no GPU to watch on node %s (%s): idling until stopped", settings.node_name, exc)
        stop.wait()
        return 0
    pod_resources = PodResourcesClient(settings.pod_resources_socket)
    sender = Sender(settings.portal_url, settings.credential(), settings.node_name,
                    SampleBuffer(settings.buffer_max_samples), max_batch=settings.batch_max_samples,
                    timeout=settings.http_timeout_seconds)
    log.info("watching %d GPU(s) on node %s every %.0f s", nv.nvmlDeviceGetCount(), settings.node_name,
             settings.interval_seconds)
    try:
        Agent(settings, nv=nv, pod_resources=pod_resources, sender=sender).run(stop)
    finally:
        sender.close()
        pod_resources.close()
        try:
            nv.nvmlShutdown()
        except nv.NVMLError:
            pass
    return 0
