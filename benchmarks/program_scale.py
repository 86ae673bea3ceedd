"""How the program scales with nodes: resource count and evaluation time under Pulumi mocks.

Run: .venv/bin/python benchmarks/program_scale.py
Prints one line per size, then the figures the foundation issue asks for. Targets: the resource count
grows linearly with nodes, and 100 nodes evaluate in under 5 s.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.program import ROOT, run_program  # noqa: E402

SIZES = (1, 10, 100)


def config(nodes: int) -> dict[str, str]:
    entries = [{"name": "node000", "host": "10.20.0.1", "role": "control-plane"}]
    entries += [
        {"name": f"node{i:03d}", "host": f"10.20.{i // 250}.{i % 250 + 2}", "labels": {"jhub.io/pool": "a100"}}
        for i in range(1, nodes)
    ]
    return {
        "jhub:nodes": json.dumps(entries),
        "jhub:ssh": json.dumps({"privateKeyFile": str(ROOT / "tests" / "stacks" / "test_ed25519")}),
        "jhub:offline": json.dumps({"mode": "online"}),
        "jhub:hub": json.dumps({"adminUsers": ["admin"],
                                "storage": {"type": "shared-hostpath", "hostPath": "/srv/jhub/users"}}),
    }


def measure(nodes: int) -> tuple[int, float]:
    start = time.perf_counter()
    run = run_program(config(nodes))
    elapsed = time.perf_counter() - start
    if run.error is not None:
        raise SystemExit(f"{nodes} nodes: program failed: {run.error}")
    return len(run.resources()), elapsed


def main() -> None:
    measure(1)  # warm imports so the first size is not charged for them
    results = {n: measure(n) for n in SIZES}
    for nodes, (count, seconds) in results.items():
        print(f"{nodes:>4} nodes: {count:>5} resources, {seconds:6.2f} s")
    (c1, _), (c10, _), (c100, t100) = (results[n] for n in SIZES)
    per_node = (c100 - c10) / 90
    linear = abs((c10 - c1) / 9 - per_node) < 1e-9
    print(f"resources per added node: {per_node:.1f} (1->10: {(c10 - c1) / 9:.1f}); linear: {linear}")
    print(f"resources_per_node: {per_node:.1f} resources")
    print(f"eval_100_nodes: {t100:.2f} s")


if __name__ == "__main__":
    main()
