"""`MicroK8sCluster`: addons on the control plane, workers joined with one stable token, node labels,
the kubeconfig (a secret) and the Kubernetes provider every later component uses.

The control plane's cluster agent fingerprint (a step whose stdout it is) goes into every join, so a worker
sends the token to that control plane only.
Per worker, in creation order: admit (control plane: hosts entry + the worker's own token) -> join (worker)
-> token revoke (control plane) -> ready and facts (worker: only now, so it is never awaited as a one-node
cluster of its own) -> leave (removal only,
best effort on the worker) -> node (control plane: labels, schedulable once; drained on removal). Pulumi deletes in reverse, so a node dropped from `jhub:nodes` is cordoned and drained, leaves
MicroK8s when reachable, then is removed from the cluster on the control plane.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from . import hostscripts as scripts
from .host import Host
from ..settings import Settings
from ..settings.cluster import Node
from ..settings.validators import duration_seconds
from .transport import LOG_NONE, LOG_STDERR, NodeTarget

# A worker's token stays valid until its join succeeded, which then revokes it. Pulumi retries a failed
# join by running the join's create again on a later `up`, days later maybe, without running the admit
# (its dependency, which succeeded): so the admit's token must not expire meanwhile. The expiry is only a
# backstop for a worker that never joins and never leaves the stack.
TOKEN_TTL_SECONDS = 10 * 365 * 24 * 3600
# 32 hex characters: the length MicroK8s requires of a join token. Created once, so it never changes.
TOKEN_COMMAND = "od -An -N16 -tx1 /dev/urandom | tr -d ' \\n'"


@dataclass(frozen=True)
class ClusterArgs:
    settings: Settings
    hosts: dict[str, Host]
    control_plane_address: str


class MicroK8sCluster(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(self, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("jhub:cluster:MicroK8sCluster", "cluster", None, opts)
        self._args = args
        settings = args.settings
        self.cp = settings.control_plane
        self.cp_host = args.hosts[self.cp.name]
        self.cp_target = self.cp_host.target

        self.token = command.local.Command(
            "cluster-join-token",
            create=TOKEN_COMMAND,
            add_previous_output_in_env=False,
            logging=command.local.Logging(LOG_NONE),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"]),
        )
        self.addons = self._on_cp(f"{self.cp.name}-addons", self.cp_host.command("addons", {
            "JHUB_ADDONS": scripts.lines(settings.microk8s.addon_lines),
            "JHUB_DNS_SERVERS": ",".join(settings.microk8s.dns_upstreams),
            "JHUB_CALICO_AUTODETECT": "kubernetes-internal-ip",
        }, timeout_s=duration_seconds(settings.ssh.command_timeout)), after=self.cp_host.ready)
        # What a worker's join checks the control plane's cluster agent by (MicroK8s turns verification off
        # without it). Not secret: it is a certificate's hash.
        self.fingerprint_step = self._on_cp(
            f"{self.cp.name}-fingerprint", self.cp_host.command("fingerprint", timeout_s=60), after=[self.addons])
        self.fingerprint = pulumi.Output.unsecret(self.fingerprint_step.stdout.apply(lambda text: text.strip()))
        self.nodes_ready: dict[str, pulumi.Resource] = {
            self.cp.name: self._node_object(self.cp, after=[self.addons])
        }
        for worker in settings.workers:
            self.nodes_ready[worker.name] = self._create_worker(worker)

        kubeconfig = self._on_cp(
            f"{self.cp.name}-kubeconfig",
            self.cp_host.command("kubeconfig", {"JHUB_SERVER_ADDRESS": args.control_plane_address or "127.0.0.1"},
                            timeout_s=120),
            after=[self.addons],
            logging=LOG_NONE,
            secret_stdout=True,
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig.stdout)
        self.provider = k8s.Provider(
            "microk8s",
            kubeconfig=self.kubeconfig,
            cluster_identifier=settings.cluster_id,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.addons, kubeconfig]),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig})

    # -- helpers ----------------------------------------------------------------------------------

    def _on_cp(self, name: str, create: str, *, after=(), delete: Optional[str] = None,
               stdin=None, logging: str = LOG_STDERR, secret_stdout: bool = False,
               triggers=None, replace_first: bool = False, update: Optional[str] = None):
        """A step run on the control plane; `name` starts with the node it concerns."""
        return self.cp_target.run(
            name,
            create=create,
            delete=delete,
            update=update,
            stdin=stdin,
            logging=logging,
            secret_stdout=secret_stdout,
            triggers=triggers,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(after), delete_before_replace=replace_first
            ),
        )

    def _node_object(self, node: Node, *, after) -> pulumi.Resource:
        """The node's Kubernetes Node, on the control plane: its labels (re-applied on every change), made
        schedulable once when a worker joins (never again: an admin may have cordoned it since), and, for
        a worker, cordoned and drained when it leaves the stack."""
        settings = self._args.settings
        labels = self.cp_host.command("labels", {
            "JHUB_NODE_NAME": node.name,
            "JHUB_LABELS": scripts.lines(f"{k}={v}" for k, v in sorted(node.labels.items())),
        }, timeout_s=600)
        if node.is_control_plane:
            return self._on_cp(f"{node.name}-node", labels, after=after)
        drain_env = {
            "JHUB_NODE_NAME": node.name,
            "JHUB_DRAIN_TIMEOUT": str(duration_seconds(settings.microk8s.drain_timeout)),
        }
        uncordon = self.cp_host.command("drain", drain_env, args=["uncordon"], timeout_s=300)
        return self._on_cp(
            f"{node.name}-node",
            f"( {labels} ) && ( {uncordon} )",
            update=labels,
            delete=self.cp_host.command(
                "drain", drain_env, args=["drain"],
                timeout_s=duration_seconds(settings.microk8s.drain_timeout) + 120,
            ),
            after=after,
        )

    def _create_worker(self, worker: Node) -> pulumi.Resource:
        settings = self._args.settings
        host = self._args.hosts[worker.name]
        token = pulumi.Output.secret(self.token.stdout).apply(lambda cluster_token: worker_token(cluster_token,
                                                                                           worker.name))
        cluster = {"JHUB_CONTROL_PLANE_ADDRESS": self._args.control_plane_address,
                   "JHUB_CLUSTER_ID": settings.cluster_id}
        join_timeout = duration_seconds(settings.microk8s.join_timeout)
        # Every input is in the command text, so a change re-runs the (idempotent) join; no triggers.
        join_create = self.fingerprint.apply(lambda fingerprint: host.command("join", {
            **cluster,
            "JHUB_CONTROL_PLANE_FINGERPRINT": fingerprint,
            "JHUB_RESET_ID": worker.reset_id,
            "JHUB_NODE_NAME": worker.name,
            "JHUB_JOIN_TIMEOUT": str(join_timeout),
        }, timeout_s=join_timeout + 120))
        # The worker's address on the cluster network, as its own address step found it.
        # JHUB_JOIN_STEP: a digest of the join's command text, so whatever runs the join again (a reset, a
        # new join.sh, another fingerprint or timeout) runs this admit before it and the revoke after it: a
        # changed command text re-runs create (a trigger would replace the admit, and its delete removes
        # the node), and the token is registered again though the last join's revoke dropped it. A failed
        # join retried as it was re-runs neither: its token was never revoked, and its expiry is years.
        # JHUB_JOIN_ID: the worker's reset id, logged.
        admit_env = pulumi.Output.all(host.address, join_create).apply(lambda got: {
            "JHUB_NODE_NAME": worker.name,
            "JHUB_NODE_ADDRESS": got[0],
            "JHUB_TOKEN_TTL": str(TOKEN_TTL_SECONDS),
            **({"JHUB_JOIN_ID": worker.reset_id} if worker.reset_id else {}),
            "JHUB_JOIN_STEP": hashlib.sha256(got[1].encode()).hexdigest()[:16],
        })
        admit = self._on_cp(
            f"{worker.name}-admit",
            admit_env.apply(lambda env: self.cp_host.command("admit", env, args=["add"], timeout_s=300)),
            delete=admit_env.apply(
                lambda env: self.cp_host.command("admit", env, args=["remove"], timeout_s=300)),
            stdin=token,
            after=[self.addons, *host.installed],
            replace_first=True,
        )
        join = host.target.run(
            f"{worker.name}-join",
            create=join_create,
            stdin=token,
            logging=LOG_STDERR,
            opts=pulumi.ResourceOptions(parent=host, depends_on=[admit, self.fingerprint_step, *host.installed],
                                        delete_before_replace=True),
        )
        # Once the join succeeded, no one needs the token. The same env as the admit (its address, reset id
        # and script), so whenever the admit registers the token again, this runs again after the join.
        revoke = self._on_cp(
            f"{worker.name}-token-revoke",
            admit_env.apply(lambda env: self.cp_host.command("admit", env, args=["revoke"], timeout_s=300)),
            stdin=token,
            after=[join],
        )
        ready = host.create_ready(after=[join, revoke])
        leave = host.target.best_effort(
            f"{worker.name}-leave",
            delete=host.command("leave", {"JHUB_CLUSTER_ID": settings.cluster_id}, timeout_s=600),
            opts=pulumi.ResourceOptions(parent=host, depends_on=[join], delete_before_replace=True),
        )
        return self._node_object(worker, after=[leave, ready])


def worker_token(cluster_token: str, worker: str) -> str:
    """The worker's own join token (32 hex characters, as MicroK8s wants), derived from the stack's random
    token: stable across runs, and one worker's revoke never closes the door on another's join."""
    return hashlib.sha256(f"jhub-join\0{cluster_token.strip()}\0{worker}".encode()).hexdigest()[:32]


def control_plane_address(cp: Node) -> str:
    """Where workers and the kubeconfig reach the API: the configured address, else the SSH host (an
    IP, the settings make sure). Empty for a lone local node: its address step finds its own address."""
    if cp.address:
        return cp.address
    if cp.is_local:
        return ""
    return cp.host


def hosts_entries(settings: Settings, node: Node) -> tuple[str, ...]:
    """Names a node must resolve: itself and the control plane (workers are added on the control
    plane by their own admit step, so adding a worker never changes another node's inputs)."""
    entries = {}
    for other in (node, settings.control_plane):
        address = other.address or (None if other.is_local else other.host)
        if address and re.match(r"^[0-9a-fA-F.:]+$", address):
            entries[other.name] = address
    return tuple(f"{address} {name}" for name, address in sorted(entries.items()))
