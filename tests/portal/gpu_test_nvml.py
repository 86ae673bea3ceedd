"""A recorded NVML sample set played through the real pynvml module: its functions are replaced, its
error classes, constants and GPM structures are pynvml's own. Handles are the recorded device entries.

GPM (Hopper and later): a device with ``"gpm_supported": true`` answers nvmlGpmQueryDeviceSupport; each of
its MIG slices has a ``gpu_instance_id`` and ``gpm_sm_util``, the SM utilisation recorded over each interval
between two successive GPM samples of that instance (the last value holds after the list). A device without
it answers isSupportedDevice 0, as an A100 does."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from types import SimpleNamespace

import pynvml

RECORDED = Path(__file__).parent / "data" / "nvml_recorded.json"
RECORDED_H100_MIG = Path(__file__).parent / "data" / "nvml_recorded_h100_mig.json"


class RecordedNvml:
    def __init__(self, path: Path = RECORDED) -> None:
        self.data = json.loads(path.read_text())
        self.initialised = False
        self.gpm_rounds: dict[str, int] = {}  # MIG UUID -> GPM samples taken of it
        self.gpm_samples: dict[int, tuple[str, int] | None] = {}  # live sample address -> (MIG UUID, round)
        self.gpm_freed = 0

    @staticmethod
    def _value(value):
        if value == "NOT_SUPPORTED":
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    def install(self, monkeypatch) -> None:
        devices = self.data["devices"]
        v = self._value

        def handle(index):
            if not self.initialised:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
            if index >= len(devices):
                raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
            return devices[index]

        def mig_handle(device, slot):
            entry = device.get("mig_devices", [])[slot]
            if entry is None:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
            return entry

        def init():
            self.initialised = True

        def gpm_alloc():
            sample = ctypes.pointer(pynvml.struct_c_nvmlGpmSample_t())
            self.gpm_samples[ctypes.addressof(sample.contents)] = None
            self._keep = getattr(self, "_keep", []) + [sample]  # the memory stays valid while the test runs
            return sample

        def gpm_free(sample):
            address = ctypes.addressof(sample.contents)
            assert address in self.gpm_samples, "a GPM sample freed twice, or never allocated"
            del self.gpm_samples[address]
            self.gpm_freed += 1

        def gpm_mig_sample(device, instance, sample):
            if not device.get("gpm_supported"):
                raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
            (mig,) = [m for m in device["mig_devices"] if m and m["gpu_instance_id"] == instance]
            taken = self.gpm_rounds[mig["uuid"]] = self.gpm_rounds.get(mig["uuid"], 0) + 1
            self.gpm_samples[ctypes.addressof(sample.contents)] = (mig["uuid"], taken)
            return sample

        def gpm_metrics(request):
            assert request.version == pynvml.NVML_GPM_METRICS_GET_VERSION
            first = self.gpm_samples[ctypes.addressof(request.sample1.contents)]
            second = self.gpm_samples[ctypes.addressof(request.sample2.contents)]
            assert first and second and first[0] == second[0] and second[1] == first[1] + 1, (first, second)
            (mig,) = [m for d in devices for m in d.get("mig_devices", []) if m and m["uuid"] == first[0]]
            recorded = mig["gpm_sm_util"]
            for i in range(request.numMetrics):
                metric = request.metrics[i]
                if metric.metricId == pynvml.NVML_GPM_METRIC_SM_UTIL:
                    metric.value = recorded[min(first[1], len(recorded)) - 1]
                    metric.nvmlReturn = pynvml.NVML_SUCCESS
                else:
                    metric.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
            return request

        functions = {
            "nvmlInit": init,
            "nvmlShutdown": lambda: setattr(self, "initialised", False),
            "nvmlDeviceGetCount": lambda: len(devices),
            "nvmlDeviceGetHandleByIndex": handle,
            "nvmlDeviceGetUUID": lambda h: h["uuid"],
            "nvmlDeviceGetName": lambda h: h["name"],
            "nvmlDeviceGetUtilizationRates": lambda h: SimpleNamespace(**v(h["utilization"])),
            "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(**h["memory"]),
            "nvmlDeviceGetPowerUsage": lambda h: v(h["power_mw"]),
            "nvmlDeviceGetTemperature": lambda h, sensor: v(h["temperature"]),
            "nvmlDeviceGetMigMode": lambda h: tuple(v(h.get("mig_mode", "NOT_SUPPORTED"))),
            "nvmlDeviceGetMaxMigDeviceCount": lambda h: h["max_mig_devices"],
            "nvmlDeviceGetMigDeviceHandleByIndex": mig_handle,
            "nvmlDeviceGetComputeRunningProcesses": lambda h: [SimpleNamespace(**p) for p in v(h["processes"])],
            "nvmlDeviceGetGpuInstanceId": lambda h: v(h.get("gpu_instance_id", "NOT_SUPPORTED")),
            "nvmlGpmQueryDeviceSupport": lambda h: SimpleNamespace(version=pynvml.NVML_GPM_SUPPORT_VERSION,
                                                                   isSupportedDevice=int(bool(h.get("gpm_supported")))),
            "nvmlGpmSampleAlloc": gpm_alloc,
            "nvmlGpmSampleFree": gpm_free,
            "nvmlGpmMigSampleGet": gpm_mig_sample,
            "nvmlGpmMetricsGet": gpm_metrics,
        }
        for name, function in functions.items():
            assert hasattr(pynvml, name), f"pynvml has no {name}: the agent must not call it"
            monkeypatch.setattr(pynvml, name, function)
