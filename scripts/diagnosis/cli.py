"""`jhub diag`: arguments, the checks in screen order, exit codes (0 all well, 1 problems, 2 could not run)."""

from __future__ import annotations

import argparse
import datetime
import sys

from . import certs, gpu, images, nodes, pods, services, source
from .report import Section, as_json, render

OK, PROBLEMS, CANNOT_RUN = 0, 1, 2


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jhub diag", description="One screen on a running jhub cluster.")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="default: the stack's kubeconfig output (pulumi stack output kubeconfig)")
    parser.add_argument("--stack", help="the stack (Pulumi.<stack>.yaml): namespace, features, needed images; "
                                        "default: pulumi's current stack when no --kubeconfig is given")
    parser.add_argument("--facts", metavar="FILE", help="the stack's `nodes` output as JSON (default: pulumi's)")
    parser.add_argument("--namespace", help="the hub's namespace (default: jhub:hub.namespace, else jhub)")
    parser.add_argument("--json", action="store_true", help="print the same data as JSON")
    return parser.parse_args(argv)


def collect(args: argparse.Namespace, now: datetime.datetime) -> list[Section]:
    stack = args.stack
    if stack is None and not args.kubeconfig:
        stack = source.pulumi("stack", "--show-name").strip() or None
    settings = source.stack_settings(stack)
    config = source.kubeconfig(args.kubeconfig, stack)
    facts = source.facts(args.facts, stack, use_pulumi=not args.kubeconfig or stack is not None)
    cluster = source.Cluster(config)
    cluster.reachable()
    namespace = args.namespace or (settings.hub.namespace if settings else "jhub")
    node_list = cluster.nodes()
    gpus_in_facts = sum(len(((e or {}).get("facts") or {}).get("gpus") or []) for e in (facts or {}).values())
    checks = [
        ("nodes", lambda: nodes.check(node_list, facts)),
        ("pods", lambda: pods.check(cluster, namespace, stack)),
        ("hub", lambda: services.hub(cluster, namespace)),
        ("portal", lambda: services.portal(cluster, namespace, settings.portal.enabled if settings else None)),
        ("gpu operator", lambda: gpu.check(cluster, settings.gpu.operator if settings else None, gpus_in_facts)),
        ("images", lambda: images.check(node_list, images.needed(settings) if settings else None, stack)),
        ("certificates", lambda: certs.check(cluster, namespace, now)),
    ]
    return [guarded(name, check, cluster) for name, check in checks]


def guarded(name: str, check, cluster) -> Section:
    """One check; an API answer it cannot read past (403 from a kubeconfig with less rights) is its problem."""
    try:
        return check()
    except cluster.errors as error:
        section = Section(name)
        section.problem(f"{name}: the API server answered {error.status} {error.reason}",
                        "use the stack's kubeconfig (pulumi stack output kubeconfig --show-secrets): it may read all")
        return section


def main(argv: list[str] | None = None, now: datetime.datetime | None = None) -> int:
    args = parse(argv)
    try:
        sections = collect(args, now or datetime.datetime.now(datetime.UTC))
    except source.CannotRun as error:
        print(f"jhub diag: cannot run: {error}", file=sys.stderr)
        return CANNOT_RUN
    print(as_json(sections) if args.json else render(sections))
    return PROBLEMS if any(s.problems for s in sections) else OK
