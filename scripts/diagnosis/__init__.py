"""`jhub diag` (scripts/diag.py): one screen on a running jhub cluster, from the admin machine.

| module | what it checks |
|---|---|
| `source.py` | where the kubeconfig, the node facts and the stack's settings come from; GET-only API access |
| `report.py` | a section's lines and problems (each with its fix), the screen and `--json` |
| `nodes.py` | Ready, MicroK8s version, GPUs advertised vs the facts, pressure conditions |
| `pods.py` | jhub's pods that are not Running, their reason and last events |
| `services.py` | the hub's health and the proxy's routes, the portal's readiness (through the service proxy) |
| `gpu.py` | the GPU Operator's ClusterPolicy state and its validator pods |
| `images.py` | images a node lacks, against what the lock and the enabled features need |
| `certs.py` | TLS certificates near expiry |
| `cli.py` | arguments, the order of the checks, exit codes |
"""
