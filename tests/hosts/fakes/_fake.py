"""Shared state and call log for the fake `snap` and `microk8s` commands.

snap and microk8s cannot exist on the test machine, so the host-script tests put these fakes first on
PATH. They keep a small JSON state in $FAKE_STATE (outside the temporary root the scripts write to, so
"a second run changes no file" can be checked on the root alone) and append every call to
$FAKE_STATE/calls.jsonl with its argv and full environment. Files MicroK8s itself would write
(args/, credentials/, var/lock/) are written under $JHUB_ROOT, like the real snap does.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

STATE_DIR = Path(os.environ.get("FAKE_STATE") or "/nonexistent-fake-state")  # tests import the constants
ROOT = Path(os.environ.get("JHUB_ROOT") or "/nonexistent-jhub-root")

DEFAULT_KUBELET_ARGS = """--kubeconfig=${SNAP_DATA}/credentials/kubelet.config
--cert-dir=${SNAP_DATA}/certs
--fail-swap-on=false
--node-labels="microk8s.io/cluster=true,node.kubernetes.io/microk8s-controlplane=microk8s-controlplane"
"""

DEFAULT_KUBE_PROXY_ARGS = """--kubeconfig=${SNAP_DATA}/credentials/proxy.config
--cluster-cidr=10.1.0.0/16
--healthz-bind-address=127.0.0.1
"""

# What a fresh MicroK8s 1.32 node pulls before it can be Ready (research notes, RESEARCH-microk8s.md).
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
CALICO_IMAGES = {
    "cni": "docker.io/calico/cni:v3.28.1",
    "node": "docker.io/calico/node:v3.28.1",
    "kube-controllers": "docker.io/calico/kube-controllers:v3.28.1",
}
NODE_IMAGES = [PAUSE_IMAGE, *CALICO_IMAGES.values()]

CNI_YAML = """kind: DaemonSet
apiVersion: apps/v1
metadata:
  name: calico-node
  namespace: kube-system
spec:
  template:
    spec:
      initContainers:
        - name: upgrade-ipam
          image: docker.io/calico/cni:v3.28.1
        - name: install-cni
          image: docker.io/calico/cni:v3.28.1
      containers:
        - name: calico-node
          image: docker.io/calico/node:v3.28.1
          env:
            - name: IP
              value: "autodetect"
            - name: IP_AUTODETECTION_METHOD
              value: "first-found"
            - name: CALICO_IPV4POOL_VXLAN
              value: "Always"
---
kind: Deployment
apiVersion: apps/v1
metadata:
  name: calico-kube-controllers
  namespace: kube-system
spec:
  template:
    spec:
      containers:
        - name: calico-kube-controllers
          image: docker.io/calico/kube-controllers:v3.28.1
"""

CONTAINERD_TEMPLATE = """version = 2
oom_score = 0

[plugins."io.containerd.grpc.v1.cri"]

  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  sandbox_image = "registry.k8s.io/pause:3.10"
  stats_collect_period = 10
"""

DOCKER_IO_HOSTS = """server = "https://docker.io"

[host."https://registry-1.docker.io"]
  capabilities = ["pull", "resolve"]
"""

COREFILE = """.:53 {
    errors
    health {
      lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
"""


def log_call(cmd: str) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    entry = {"cmd": cmd, "argv": sys.argv[1:], "env": dict(os.environ), "time": time.time()}
    with open(STATE_DIR / "calls.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")


def load(name: str, default: dict) -> dict:
    path = STATE_DIR / f"{name}.json"
    if path.exists():
        data = json.loads(path.read_text())
        for k, v in default.items():
            data.setdefault(k, v)
        return data
    return json.loads(json.dumps(default))


def save(name: str, data: dict) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    (STATE_DIR / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True))


SNAP_DEFAULT = {"installed": {}, "acked": [], "held": [], "services": {}, "hold_unsupported": False,
                "install_seconds": 0}
MK8S_DEFAULT = {
    "never_ready": False,          # kubelite broken: API refused, never ready
    "containerd_down": False,      # `microk8s ctr` cannot reach containerd
    "mirror_serves": True,         # a configured registry mirror has every image
    "addons": {"ha-cluster": True},
    "nodes": {},
    "calico_method": "first-found",
    "calico_present": True,
    "corefile": COREFILE,
    "images": {},
    "join_fails": 0,
    "cluster_fingerprint": "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",  # the control plane's
    "token_expired": False,
    "control_plane_root": None,    # a join checks its token in that fake host's token files, as the agent does
    "clock_offset": 0,             # seconds this host's join is ahead of now (a join retried days later)
    "import_seconds": 0,           # how long `ctr images import` takes, silent
    "import_hangs_after": 0,       # seconds `ctr images import` then hangs, its images named (a cut-off import)
    "kubelet_registers": False,    # a Ready node's kubelet registers its Node (by args/kubelet's name)
    "server": "127.0.0.1",
}


def snap_data() -> Path:
    return ROOT / "var/snap/microk8s/current"


def create_microk8s_data(rev: str) -> None:
    """What installing the microk8s snap leaves in $SNAP_DATA."""
    base = ROOT / "var/snap/microk8s"
    revdir = base / rev
    current = base / "current"
    if current.is_symlink() or current.exists():
        old = current.resolve()
        if old != revdir and old.exists() and not revdir.exists():
            shutil.copytree(old, revdir, symlinks=True)  # snap copies data on refresh
        if current.is_symlink():
            current.unlink()
    if not revdir.exists():
        (revdir / "args/cni-network").mkdir(parents=True)
        (revdir / "args/certs.d/docker.io").mkdir(parents=True)
        (revdir / "credentials").mkdir(parents=True)
        (revdir / "var/lock").mkdir(parents=True)
        (revdir / "args/kubelet").write_text(DEFAULT_KUBELET_ARGS)
        (revdir / "args/kube-proxy").write_text(DEFAULT_KUBE_PROXY_ARGS)
        (revdir / "args/cni-network/cni.yaml").write_text(CNI_YAML)
        (revdir / "args/containerd-template.toml").write_text(CONTAINERD_TEMPLATE)
        (revdir / "args/certs.d/docker.io/hosts.toml").write_text(DOCKER_IO_HOSTS)
    current.symlink_to(rev)


def remove_microk8s_data() -> None:
    shutil.rmtree(ROOT / "var/snap/microk8s", ignore_errors=True)


def fail(msg: str, code: int = 1) -> None:
    print(msg, file=sys.stderr)
    sys.exit(code)
