"""`GpuOperator`: the operator's namespace, the GPU labels of the pools' nodes, the chart release, then the
CUDA smoke test that `pulumi up` waits for.

Order (and so the reverse order a removal takes): namespace and node labels -> release -> smoke test. Turning
`jhub:gpu.operator` off removes the smoke test, then the release (its pre-delete hook removes the CRDs, and
with them the ClusterPolicy and its operands, while the operator still runs), then the labels jhub set, then
the namespace.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from ..bundle.locks import Lock
from ..bundle.charts import chart_source
from ..settings import Settings
from ..settings.gpu_checks import pool_nodes
from . import chart, manifests
from .values import chart_values, driver_labels, pool_labels

RELEASE_TIMEOUT_S = 1800  # driver containers compile against the kernel on first start
SMOKE_COMMAND = ".venv/bin/python -m components.gpu.smoke"  # the program's own virtualenv (Pulumi.yaml)


@dataclass(frozen=True)
class GpuOperatorArgs:
    settings: Settings
    provider: k8s.Provider
    lock: Lock
    kubeconfig: pulumi.Output[str]
    facts: dict[str, pulumi.Output]  # node name -> its facts (hosts/facts.sh)
    nodes_ready: dict[str, pulumi.Resource]  # node name -> the step after which its Node exists
    depends_on: list[pulumi.Resource] = field(default_factory=list)


def gpu_nodes_of(facts: dict[str, dict]) -> str:
    """`a,b`: the nodes whose facts list an NVIDIA GPU (whatever driver it is bound to)."""
    return ",".join(sorted(name for name, f in facts.items() if (f or {}).get("gpus")))


def parse_gpus(stdout: Optional[str]) -> dict:
    text = (stdout or "").strip()
    return json.loads(text) if text else {}


class GpuOperator(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    smoke: command.local.Command
    gpus: pulumi.Output[dict]

    def __init__(self, args: GpuOperatorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("jhub:gpu:GpuOperator", "gpu-operator", None, opts)
        self._args = args
        gpu = args.settings.gpu
        values = chart_values(gpu)
        namespace = k8s.core.v1.Namespace(
            "gpu-operator-namespace", metadata=manifests.namespace()["metadata"],
            opts=self._opts(args.depends_on))
        labels = self._create_node_labels()
        self.release = k8s.helm.v3.Release(
            "gpu-operator",
            name=chart.RELEASE_NAME,
            namespace=chart.NAMESPACE,
            values=values,
            create_namespace=False,
            cleanup_on_fail=True,
            max_history=10,
            timeout=RELEASE_TIMEOUT_S,
            # The chart's pre-upgrade hook updates the CRDs; the new ClusterPolicy must not be checked against
            # the old CRD's schema before that (the chart's values.yaml asks for this flag with upgradeCRD).
            disable_openapi_validation=True,
            **chart_source(args.settings, args.lock, name=chart.CHART_NAME, version=chart.CHART_VERSION,
                           repo=chart.CHART_REPO),
            opts=self._opts([namespace, *labels, *args.depends_on]),
        )
        # Rerun the test whenever what the GPUs get changes: values, labels, the test itself, the nodes.
        run_id = hashlib.sha256(json.dumps(
            {"values": values, "pools": [p.model_dump(mode="json") for p in gpu.pools],
             "nodes": sorted(n.name for n in args.settings.nodes),
             "job": manifests.smoke_job("node", "nvidia.com/gpu", gpu.smoke_test_timeout, "run")},
            sort_keys=True).encode()).hexdigest()[:16]
        self.smoke = command.local.Command(
            "gpu-smoke",
            create=SMOKE_COMMAND,
            environment={
                "JHUB_KUBECONFIG": pulumi.Output.secret(args.kubeconfig),
                "JHUB_SMOKE_TIMEOUT": str(gpu.smoke_test_timeout),
                "JHUB_SMOKE_RUN": run_id,
                # Nodes whose facts show NVIDIA GPUs: the operator must find each of them.
                "JHUB_GPU_NODES": pulumi.Output.all(**args.facts).apply(gpu_nodes_of),
                # node=layout for every node of a MIG pool: tested only once the MIG manager applied it.
                "JHUB_MIG_LAYOUTS": ",".join(
                    f"{node.name}={pool.mig.layout}" for pool in gpu.pools if pool.mig
                    for node in sorted(pool_nodes(pool, args.settings.nodes), key=lambda n: n.name)),
            },
            triggers=[run_id],
            add_previous_output_in_env=False,
            logging=command.local.Logging.STDERR,
            # Every node has joined (a GPU node still joining would be missed).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, *args.nodes_ready.values()],
                                        custom_timeouts=pulumi.CustomTimeouts(
                                            create=f"{gpu.smoke_test_timeout + 300}s")),
        )
        # Models, counts and versions are no secret; the command's outputs are, since its environment holds
        # the kubeconfig.
        self.gpus = pulumi.Output.unsecret(self.smoke.stdout.apply(parse_gpus))
        self.register_outputs({"gpus": self.gpus})

    def _opts(self, after) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=list(after))

    def _create_node_labels(self) -> list[pulumi.Resource]:
        """One NodePatch per node that gets GPU labels: a pool's nodes (device plugin config, MIG layout) and,
        with `driver: auto`, every node (nodes whose driver is loaded keep it). Server-side apply owns just
        these keys, so removing a pool or the feature removes exactly the labels jhub set."""
        args, gpu = self._args, self._args.settings.gpu
        static: dict[str, dict] = {}
        for pool in gpu.pools:
            for node in pool_nodes(pool, args.settings.nodes):
                static[node.name] = pool_labels(pool)
        names = sorted(n.name for n in args.settings.nodes) if gpu.driver == "auto" else sorted(static)
        patches = []
        for name in names:
            fixed = static.get(name, {})
            labels = args.facts[name].apply(lambda facts, fixed=fixed: dict(sorted(
                {**fixed, **driver_labels(gpu, facts)}.items()))) if gpu.driver == "auto" else fixed
            patches.append(k8s.core.v1.NodePatch(
                f"{name}-gpu-labels",
                metadata={
                    "name": name,
                    "labels": labels,
                    # The operator writes default values of these labels on GPU nodes it finds first.
                    "annotations": {"pulumi.com/patchForce": "true"},
                },
                opts=self._opts([args.nodes_ready[name]]),
            ))
        return patches
