"""A recorded NVML sample set played through the real pynvml module: its functions are replaced, its
error classes and constants are pynvml's own. Handles are the recorded device entries."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pynvml

RECORDED = Path(__file__).parent / "data" / "nvml_recorded.json"


class RecordedNvml:
    def __init__(self, path: Path = RECORDED) -> None:
        self.data = json.loads(path.read_text())
        self.initialised = False

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
        }
        for name, function in functions.items():
            assert hasattr(pynvml, name), f"pynvml has no {name}: the agent must not call it"
            monkeypatch.setattr(pynvml, name, function)
