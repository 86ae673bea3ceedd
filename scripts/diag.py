#!/usr/bin/env python3
"""`jhub diag`: one screen on a running jhub cluster (nodes, pods, hub, proxy, portal, GPU Operator, images,
certificates), each problem with the command or key that fixes it. Run from the admin machine:

    .venv/bin/python scripts/diag.py                       # the stack's kubeconfig output (pulumi)
    .venv/bin/python scripts/diag.py --kubeconfig FILE [--stack site] [--facts nodes.json] [--json]

Exit code: 0 all well, 1 problems found, 2 could not run (no kubeconfig, API server unreachable).
Only GET requests reach the cluster. See scripts/diagnosis/.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.diagnosis.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
