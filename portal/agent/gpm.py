"""Activity of MIG slices, which report no NVML utilisation (nvmlDeviceGetUtilizationRates fails on them).

Two signals, the better one where the GPU has it:

* **GPM** (GPU Performance Monitoring; Hopper and later): each round takes a GPM sample of every MIG GPU
  instance (``nvmlGpmMigSampleGet`` on the physical GPU) and computes ``NVML_GPM_METRIC_SM_UTIL`` over the
  interval since that instance's previous sample: a real per-slice utilisation, sent as ``util_percent``.
  A slice's first round has no interval yet, so it gets the fallback below; so does a round NVML refuses
  (e.g. NO_PERMISSION where profiling is restricted to admins), one slice at a time.
* **Processes** (the fallback, e.g. on A100, whose NVML answers NOT_SUPPORTED to GPM): the slice is
  ``active`` while a compute process holds more than ``active_memory_bytes`` of its memory (0: any compute
  process), and idle when none does. A CUDA process is in that list for as long as it holds a context,
  computing or not, so this never calls a computing slice idle, but it calls a kernel that holds a loaded
  model and computes nothing active: without GPM such a session is flagged idle only once no process of it
  holds the slice (a kernel shut down or restarted without touching the GPU, a CPU-only notebook on a GPU
  profile). Raising the threshold flags kernels that hold only a small context, at the risk of calling a
  computation that uses less memory than that idle.
"""

from __future__ import annotations

from types import ModuleType


def active_by_processes(processes, *, active_memory_bytes: int) -> bool:
    """The fallback signal (see the module doc); a process whose memory NVML does not tell counts as active."""
    return any(p.used_memory_bytes is None or p.used_memory_bytes > active_memory_bytes for p in processes)


class GpmSampler:
    """Per MIG GPU instance, the previous GPM sample, so that each round yields the SM utilisation since the
    last one. One per agent; ``close`` frees what it holds."""

    def __init__(self, nv: ModuleType) -> None:
        self.nv = nv
        self._supported: dict[str, bool] = {}  # physical GPU UUID -> GPM supported
        self._previous: dict[str, object] = {}  # MIG UUID -> its last GPM sample

    def supported(self, gpu_uuid: str, gpu_handle) -> bool:
        if gpu_uuid not in self._supported:
            nv = self.nv
            try:
                self._supported[gpu_uuid] = bool(nv.nvmlGpmQueryDeviceSupport(gpu_handle).isSupportedDevice)
            except (nv.NVMLError, AttributeError):  # AttributeError: an old pynvml without GPM bindings
                self._supported[gpu_uuid] = False
        return self._supported[gpu_uuid]

    def mig_util(self, *, gpu_uuid: str, gpu_handle, mig_uuid: str, mig_handle) -> float | None:
        """SM utilisation (percent) of one MIG slice since its previous call; None on the first call, where GPM
        is not supported, or when NVML refuses."""
        if not self.supported(gpu_uuid, gpu_handle):
            return None
        nv = self.nv
        sample = None
        try:
            instance = nv.nvmlDeviceGetGpuInstanceId(mig_handle)
            sample = nv.nvmlGpmSampleAlloc()
            nv.nvmlGpmMigSampleGet(gpu_handle, instance, sample)
        except nv.NVMLError:
            if sample is not None:
                self._free(sample)
            return None
        previous, self._previous[mig_uuid] = self._previous.get(mig_uuid), sample
        if previous is None:
            return None
        try:
            return self._sm_util(previous, sample)
        finally:
            self._free(previous)

    def _sm_util(self, first, second) -> float | None:
        nv = self.nv
        request = nv.c_nvmlGpmMetricsGet_t()
        request.version = nv.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = 1
        request.sample1, request.sample2 = first, second
        request.metrics[0].metricId = nv.NVML_GPM_METRIC_SM_UTIL
        try:
            nv.nvmlGpmMetricsGet(request)
        except nv.NVMLError:
            return None
        metric = request.metrics[0]
        if metric.nvmlReturn != nv.NVML_SUCCESS:
            return None
        return min(max(float(metric.value), 0.0), 100.0)

    def forget(self, seen: set[str]) -> None:
        """Free the samples of MIG slices that are gone (not in ``seen``)."""
        for uuid in [u for u in self._previous if u not in seen]:
            self._free(self._previous.pop(uuid))

    def close(self) -> None:
        self.forget(set())

    def _free(self, sample) -> None:
        try:
            self.nv.nvmlGpmSampleFree(sample)
        except self.nv.NVMLError:
            pass
