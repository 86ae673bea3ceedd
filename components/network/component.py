"""`NetworkOperator`: the chart release, then the NicClusterPolicy once the release installed its CRD.

The CRDs are in the chart's `crds/` folder, which helm installs before the release's objects; the policy
`depends_on` the release, so it is registered only after its CRD exists, and on `pulumi destroy` (or when
`jhub:infiniband.enabled` turns off) it is deleted before the release, so the operator is still there to
honour its finalizers and remove the device plugin it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from ..bundle.locks import Lock
from ..bundle.charts import chart_source
from ..settings import Settings
from .chart import CHART_NAME, CHART_REPO, CHART_VERSION, CRD_API, RELEASE_NAME
from .policy import policy_from_facts
from .values import chart_values

RELEASE_TIMEOUT_S = 900


@dataclass(frozen=True)
class NetworkOperatorArgs:
    settings: Settings
    provider: k8s.Provider
    lock: Lock
    facts: dict[str, pulumi.Output]  # node name -> Output[dict] of hosts/facts.sh
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class NetworkOperator(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    policy: k8s.apiextensions.CustomResource

    def __init__(self, args: NetworkOperatorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("jhub:network:NetworkOperator", "network-operator", None, opts)
        settings, ib = args.settings, args.settings.infiniband
        source = chart_source(settings, args.lock, name=CHART_NAME, version=CHART_VERSION, repo=CHART_REPO)
        namespace = k8s.core.v1.Namespace(
            "network-operator-namespace",
            metadata={"name": ib.namespace, "labels": {"app.kubernetes.io/managed-by": "jhub",
                                                       "app.kubernetes.io/part-of": "jhub"}},
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on))
        self.release = k8s.helm.v3.Release(
            "network-operator",
            name=RELEASE_NAME,
            namespace=ib.namespace,
            values=chart_values(settings),
            create_namespace=False,
            cleanup_on_fail=True,
            max_history=10,
            timeout=RELEASE_TIMEOUT_S,
            skip_crds=False,
            **source,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                        depends_on=[namespace, *args.depends_on]),
        )
        names = sorted(args.facts)
        # Values only inside apply: the policy's body from the facts (or a key-path error), never a resource.
        body = pulumi.Output.all(*[args.facts[n] for n in names]).apply(
            lambda facts: policy_from_facts(ib, dict(zip(names, facts))))
        self.policy = k8s.apiextensions.CustomResource(
            "nic-cluster-policy",
            api_version=CRD_API,
            kind="NicClusterPolicy",
            metadata=body.apply(lambda b: b["metadata"]),
            spec=body.apply(lambda b: b["spec"]),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.release]),
        )
        self.register_outputs({"release": self.release.name})
