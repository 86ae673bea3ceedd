"""Settings -> GPU Operator chart values (pure: same settings, byte-identical values).

The container toolkit is pointed at MicroK8s's containerd: it edits the template MicroK8s renders
`containerd.toml` from (an edit of `containerd.toml` itself would be overwritten on the next restart),
through the socket MicroK8s's containerd listens on. Every operand image is named explicitly (see
`chart.py`), and the operands a container-workload cluster never runs (sandbox, vGPU, confidential
computing) are switched off, so the ClusterPolicy names exactly what `offline.py` bundles.
"""

from __future__ import annotations

import yaml

from ..settings.gpu import GpuPool, GpuSettings
from . import chart


def toolkit_env() -> list[dict]:
    """The container toolkit's settings for MicroK8s's containerd."""
    env = {
        # The template MicroK8s renders containerd.toml from on every start of its containerd.
        "CONTAINERD_CONFIG": chart.CONTAINERD_TEMPLATE,
        # Read the existing config from that file. The toolkit's default ("command,file") first asks
        # `containerd config dump`: MicroK8s's containerd is not on the host's PATH (it lives in the snap), and
        # a host that also has a system containerd (Docker) would answer with that one's config.
        "RUNTIME_CONFIG_SOURCE": "file",
        # The toolkit writes its runtime as a drop-in and adds an `imports` line for it to the template. The
        # operator mounts the drop-in's folder from this host path (its default is /etc/containerd/conf.d,
        # outside the snap); keep it beside the template, in the args folder the snap keeps across refreshes.
        "RUNTIME_DROP_IN_CONFIG": chart.CONTAINERD_DROP_IN,
        "CONTAINERD_SOCKET": chart.CONTAINERD_SOCKET,
        # The operator sets this from operator.runtimeClass (`nvidia`) anyway; stated so the values say it.
        "CONTAINERD_RUNTIME_CLASS": chart.RUNTIME_CLASS,
        # The nvidia runtime as containerd's default: user pods that ask for nvidia.com/gpu get their GPUs
        # without a runtimeClassName (the spawner sets none), as with MicroK8s's own nvidia addon. A pod that
        # asks for no GPU sees none: without NVIDIA_VISIBLE_DEVICES the runtime passes through to runc.
        "CONTAINERD_SET_AS_DEFAULT": "true",
    }
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def device_plugin_config(pool: GpuPool | None, mig_flag: str) -> str:
    """One device plugin (and GFD) config: a pool's, or `default` for GPU nodes in no pool."""
    config: dict = {"version": "v1", "flags": {"migStrategy": mig_flag}}
    if pool is not None and pool.time_slicing is not None:
        config["sharing"] = {"timeSlicing": {
            "renameByDefault": pool.time_slicing.rename_by_default,
            "resources": [{"name": "nvidia.com/gpu", "replicas": pool.time_slicing.replicas}],
        }}
    return yaml.safe_dump(config, sort_keys=True, default_flow_style=False)


def device_plugin_configs(gpu: GpuSettings) -> dict[str, str]:
    """The `time-slicing-config` ConfigMap's data: one key per pool, plus `default`."""
    # The operator also hands the ClusterPolicy's strategy to the device plugin as MIG_STRATEGY, which wins
    # over a config file's flags: every config carries that one strategy, so what is written is what applies.
    flag = mig_strategy(gpu) if gpu.uses_mig else "none"
    data = {chart.DEFAULT_PLUGIN_CONFIG: device_plugin_config(None, flag)}
    data.update({pool.name: device_plugin_config(pool, flag) for pool in gpu.pools})
    return dict(sorted(data.items()))


def mig_strategy(gpu: GpuSettings) -> str:
    """The cluster's one MIG strategy: that of the MIG pools (checks.py refuses two), else the chart's
    `single` (GPUs without MIG are advertised whole either way)."""
    strategies = sorted({pool.mig.strategy for pool in gpu.pools if pool.mig})
    return strategies[0] if strategies else "single"


def pool_labels(pool: GpuPool) -> dict[str, str]:
    """Labels jhub sets on a pool's nodes: which device plugin config they use, and their MIG layout."""
    labels = {chart.PLUGIN_CONFIG_LABEL: pool.name}
    if pool.mig is not None:
        labels[chart.MIG_CONFIG_LABEL] = pool.mig.layout
    return labels


def host_driver_loaded(facts: dict) -> bool:
    """Whether a node's facts (hosts/facts.sh) show an NVIDIA GPU bound to a loaded NVIDIA driver."""
    return any(g.get("kernelModule") == "nvidia" and g.get("driver") for g in (facts or {}).get("gpus") or [])


def driver_labels(gpu: GpuSettings, facts: dict) -> dict[str, str]:
    """`auto`: a node whose driver is already loaded keeps it (the operator honours this label)."""
    if gpu.driver == "auto" and host_driver_loaded(facts):
        return {chart.DEPLOY_DRIVER_LABEL: "false"}
    return {}


def _off(*names: str) -> dict:
    return {name: {"enabled": False} for name in names}


def chart_values(gpu: GpuSettings) -> dict:
    driver_enabled = gpu.driver != "host"
    values = {
        # The operator's own Node Feature Discovery: it labels the nodes with NVIDIA PCI devices, and only
        # those get the GPU daemons. With the Network Operator on too, that one leaves its NFD off.
        "nfd": {"enabled": True},
        "operator": {
            **chart.image_values(chart.OPERATOR),
            # Uninstall: the chart's pre-delete hook removes the CRDs (and so the ClusterPolicy, whose
            # operands the garbage collector removes) while the operator still runs.
            "cleanupCRD": True,
            "upgradeCRD": True,
        },
        "validator": chart.image_values(chart.VALIDATOR),
        "hostPaths": {
            # Where the operands find the driver: the host's root for a preinstalled driver, the driver
            # container's root otherwise (auto: the validator tells each node's toolkit which it found).
            "driverInstallDir": "/run/nvidia/driver" if driver_enabled else "/",
        },
        "driver": {
            "enabled": driver_enabled,
            **chart.image_values(chart.DRIVER),
            "manager": chart.image_values(chart.DRIVER_MANAGER),
        },
        "toolkit": {"enabled": True, **chart.image_values(chart.TOOLKIT), "env": toolkit_env()},
        "devicePlugin": {"enabled": True, **chart.image_values(chart.DEVICE_PLUGIN)},
        "gfd": {"enabled": True, **chart.image_values(chart.GFD)},
        "dcgm": {"enabled": False},  # dcgm-exporter runs its own embedded host engine
        "dcgmExporter": {
            "enabled": gpu.dcgm_exporter,
            **chart.image_values(chart.DCGM_EXPORTER),
            # MicroK8s has no Prometheus operator: a ServiceMonitor would fail without its CRD.
            "serviceMonitor": {"enabled": False},
        },
        "mig": {"strategy": mig_strategy(gpu)},
        "migManager": {
            "enabled": gpu.uses_mig,
            **chart.image_values(chart.MIG_MANAGER),
            # MIG-capable nodes in no MIG pool run with MIG off.
            "config": {"default": "all-disabled", "create": False, "name": ""},
        },
        "nodeStatusExporter": {"enabled": False},
        **_off("gds", "gdrcopy", "vgpuManager", "vgpuDeviceManager", "vfioManager", "kataManager",
               "sandboxDevicePlugin", "kataSandboxDevicePlugin", "ccManager"),
        "sandboxWorkloads": {"enabled": False},
    }
    if gpu.pools:
        values["devicePlugin"]["config"] = {
            "create": True,
            "name": chart.DEVICE_PLUGIN_CONFIG,
            "default": chart.DEFAULT_PLUGIN_CONFIG,
            "data": device_plugin_configs(gpu),
        }
    return _sorted(values)


def _sorted(value):
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
