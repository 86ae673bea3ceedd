"""Reading the GPUs: a thin layer over pynvml (the ``nvidia-ml-py`` package), one call per fact.

Every pynvml function is looked up on the module at call time, so tests can replace them with a recorded
sample set. A value NVML cannot give (power on some boards, utilisation of a MIG slice without GPM) is None;
a MIG slice's utilisation comes from GPM where the GPU has it, else its ``active`` flag from its processes
(portal/agent/gpm.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import ModuleType

from portal.agent.gpm import GpmSampler, active_by_processes


class NvmlUnavailable(Exception):
    """No NVML here (no driver, no library) or no GPU; the message says which."""


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    used_memory_bytes: int | None  # None where NVML does not say (e.g. without permission)


@dataclass(frozen=True)
class DeviceReading:
    uuid: str
    parent_uuid: str | None  # the physical GPU of a MIG slice
    index: int
    model: str
    util_percent: float | None
    memory_used_bytes: int
    memory_total_bytes: int
    power_watts: float | None
    temperature_c: float | None
    processes: tuple[GpuProcess, ...]
    mig_enabled: bool = False  # a physical GPU in MIG mode: its work is on its slices
    active: bool | None = None  # MIG slice without a utilisation reading: a compute process holds it (gpm.py)


def load() -> ModuleType:
    """pynvml, initialised, with at least one GPU; NvmlUnavailable otherwise."""
    try:
        import pynvml
    except ImportError:
        raise NvmlUnavailable("the pynvml module (nvidia-ml-py) is not installed") from None
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except pynvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML cannot start: {exc}") from None
    if count == 0:
        raise NvmlUnavailable("NVML sees no GPU on this node")
    return pynvml


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(nv: ModuleType, call, *args):
    try:
        return call(*args)
    except nv.NVMLError:
        return None


def _processes(nv: ModuleType, handle) -> tuple[GpuProcess, ...]:
    running = _optional(nv, nv.nvmlDeviceGetComputeRunningProcesses, handle) or []
    return tuple(sorted((GpuProcess(pid=int(p.pid), used_memory_bytes=p.usedGpuMemory) for p in running),
                        key=lambda p: p.pid))


def _reading(nv: ModuleType, handle, *, index: int, parent: str | None, mig_enabled: bool = False) -> DeviceReading:
    memory = nv.nvmlDeviceGetMemoryInfo(handle)
    utilisation = _optional(nv, nv.nvmlDeviceGetUtilizationRates, handle)
    power_mw = _optional(nv, nv.nvmlDeviceGetPowerUsage, handle)
    temperature = _optional(nv, nv.nvmlDeviceGetTemperature, handle, nv.NVML_TEMPERATURE_GPU)
    return DeviceReading(
        uuid=_text(nv.nvmlDeviceGetUUID(handle)), parent_uuid=parent, index=index,
        model=_text(nv.nvmlDeviceGetName(handle)),
        util_percent=float(utilisation.gpu) if utilisation is not None else None,
        memory_used_bytes=int(memory.used), memory_total_bytes=int(memory.total),
        power_watts=power_mw / 1000.0 if power_mw is not None else None,
        temperature_c=float(temperature) if temperature is not None else None,
        processes=() if mig_enabled else _processes(nv, handle), mig_enabled=mig_enabled)


def _mig_enabled(nv: ModuleType, handle) -> bool:
    mode = _optional(nv, nv.nvmlDeviceGetMigMode, handle)  # (current, pending); NOT_SUPPORTED without MIG
    return mode is not None and mode[0] == nv.NVML_DEVICE_MIG_ENABLE


def _slice_reading(nv: ModuleType, handle, *, index: int, gpu: DeviceReading, gpu_handle, gpm: GpmSampler | None,
                   active_memory_bytes: int) -> DeviceReading:
    reading = _reading(nv, handle, index=index, parent=gpu.uuid)
    util = reading.util_percent
    if util is None and gpm is not None:
        util = gpm.mig_util(gpu_uuid=gpu.uuid, gpu_handle=gpu_handle, mig_uuid=reading.uuid, mig_handle=handle)
    active = None if util is not None else active_by_processes(reading.processes,
                                                                 active_memory_bytes=active_memory_bytes)
    return replace(reading, util_percent=util, active=active)


def read_devices(nv: ModuleType, *, gpm: GpmSampler | None = None, active_memory_bytes: int = 0
                 ) -> list[DeviceReading]:
    """Every GPU, and each MIG slice of a GPU in MIG mode, read now. ``gpm``: the agent's GPM sampler (MIG
    slices' utilisation where the GPU supports GPM); ``active_memory_bytes``: the fallback's threshold."""
    readings = []
    for index in range(nv.nvmlDeviceGetCount()):
        handle = nv.nvmlDeviceGetHandleByIndex(index)
        mig = _mig_enabled(nv, handle)
        gpu = _reading(nv, handle, index=index, parent=None, mig_enabled=mig)
        readings.append(gpu)
        if not mig:
            continue
        for slot in range(nv.nvmlDeviceGetMaxMigDeviceCount(handle)):
            slice_handle = _optional(nv, nv.nvmlDeviceGetMigDeviceHandleByIndex, handle, slot)
            if slice_handle is not None:  # NOT_FOUND: an empty slot
                readings.append(_slice_reading(nv, slice_handle, index=index, gpu=gpu, gpu_handle=handle, gpm=gpm,
                                               active_memory_bytes=active_memory_bytes))
    if gpm is not None:
        gpm.forget({r.uuid for r in readings if r.parent_uuid})
    return readings
