"""A healthy jhub cluster as the API server shows it (the airgapped example stack: gpu01-03, namespace jhub,
portal, GPU Operator, TLS), seeded into the shared fake API server; tests break one thing at a time."""

from __future__ import annotations

import base64
import datetime
import functools
import json

from scripts.diagnosis import images, source
from tests.support.kubeapi import KubeApiServer

NOW = datetime.datetime(2026, 12, 1, 8, 0, tzinfo=datetime.UTC)
NODES = ("gpu01", "gpu02", "gpu03")
GPUS = {"gpu01": 2, "gpu02": 4, "gpu03": 4}
TLS_KEY_MARK = "PRIVATE KEY"


@functools.cache
def needed_refs() -> list[str]:
    return [refs[0] for _, refs, _ in images.needed(source.stack_settings("airgapped"))]


def node(name: str, gpus: int, *, ready: bool = True, kubelet: str = "v1.32.3", pressure: tuple = ()) -> dict:
    conditions = [{"type": t, "status": "True" if t in pressure else "False", "reason": f"Kubelet{t}"}
                  for t in ("MemoryPressure", "DiskPressure", "PIDPressure")]
    conditions.append({"type": "Ready", "status": "True" if ready else "False",
                       "reason": "KubeletReady" if ready else "KubeletNotReady",
                       "message": "kubelet is posting ready status" if ready else "container runtime is down"})
    labels = {"kubernetes.io/hostname": name, "microk8s.io/cluster": "true"}
    if gpus:
        labels |= {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": str(gpus)}
    return {"kind": "Node", "apiVersion": "v1", "metadata": {"name": name, "labels": labels},
            "status": {"conditions": conditions, "nodeInfo": {"kubeletVersion": kubelet},
                       "allocatable": {"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": str(gpus)},
                       "images": [{"names": [ref, f"{ref.rsplit(':', 1)[0]}@sha256:{i:064x}"], "sizeBytes": 1}
                                  for i, ref in enumerate(needed_refs())]}}


def pod(name: str, namespace: str = "jhub", *, node_name: str = "gpu01", labels: dict | None = None,
        annotations: dict | None = None, phase: str = "Running", waiting: str | None = None) -> dict:
    state = {"waiting": {"reason": waiting, "message": f"{waiting} for the test"}} if waiting else \
        {"running": {"startedAt": "2026-12-01T07:00:00Z"}}
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": {"nodeName": node_name, "containers": [{"name": "main", "image": "x"}]},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "main", "ready": phase == "Running" and not waiting, "restartCount": 0, "image": "x",
                 "imageID": "", "state": state}]}}


def certificate(days: int, common_name: str = "hub.lab.example") -> tuple[str, str]:
    """(certificate PEM, key PEM) valid until NOW + days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW - datetime.timedelta(days=300))
            .not_valid_after(NOW + datetime.timedelta(days=days, hours=1)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def tls_secret(name: str, days: int) -> dict:
    cert, key = certificate(days)
    return {"kind": "Secret", "apiVersion": "v1", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": "jhub"},
            "data": {"tls.crt": base64.b64encode(cert.encode()).decode(),
                     "tls.key": base64.b64encode(key.encode()).decode()}}


def service(name: str, port: int, namespace: str = "jhub") -> dict:
    return {"kind": "Service", "apiVersion": "v1", "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"port": port}]}}


def facts() -> dict:
    """The stack's `nodes` output for the three nodes (facts as hosts/facts.sh prints them, in part)."""
    return {n: {"role": "control-plane" if n == "gpu01" else "worker", "host": f"192.168.10.1{i + 1}",
                "address": f"192.168.10.1{i + 1}", "labels": {},
                "facts": {"hostname": n, "gpus": [{"index": g, "model": "NVIDIA A100-SXM4-80GB"}
                                                  for g in range(GPUS[n])],
                          "microk8s": {"installed": True, "version": "v1.32.3", "running": True}}}
            for i, n in enumerate(NODES)}


class Healthy:
    """The fake API server with a healthy cluster; `routed`: users whose servers the proxy reaches."""

    def __init__(self, api: KubeApiServer) -> None:
        self.api = api
        self.routed = {"alice"}
        self.readyz = (200, {"status": "ok", "database": "ok", "collector": "ok"})
        self.hub_health = 200
        for name in NODES:
            api.add(node(name, GPUS[name]))
        for name, port in (("hub", 8081), ("proxy-public", 80), ("proxy-api", 8001), ("jhub-portal", 29781)):
            api.add(service(name, port))
        api.add(pod("hub-6d9f7c-x2x7k", labels={"app": "jupyterhub", "component": "hub"}))
        api.add(pod("proxy-5b8c9d-pq4rs", labels={"app": "jupyterhub", "component": "proxy"}))
        api.add(pod("jhub-portal-7f6d5c-m9n8b", labels={"app.kubernetes.io/name": "jhub-portal"}))
        api.add(pod("jupyter-alice", node_name="gpu02", labels={"component": "singleuser-server",
                                                               "hub.jupyter.org/username": "alice"},
                    annotations={"hub.jupyter.org/username": "alice"}))
        api.add(pod("smoke-gpu01", "gpu-operator", phase="Succeeded"))
        for name in NODES:
            api.add(pod(f"nvidia-operator-validator-{name}", "gpu-operator", node_name=name,
                        labels={"app": "nvidia-operator-validator"}))
        api.add({"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "cluster-policy"},
                 "spec": {}, "status": {"state": "ready"}})
        api.add({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "jhub"}})
        api.add(tls_secret("hub-tls-a1b2c3", days=90))
        api.proxy("jhub", "hub", 8081, lambda r: (self.hub_health, {"status": "ok"} if self.hub_health == 200
                                                  else "upstream connect error"))
        api.proxy("jhub", "proxy-public", 80, self._proxy_public)
        api.proxy("jhub", "jhub-portal", 29781, lambda r: self.readyz)

    def _proxy_public(self, request):
        if request["path"] == "/hub/health":
            return self.hub_health, {}
        user = request["path"].split("/")[2]
        if user in self.routed:
            return 200, {"version": "2.14.2"}
        return 404, "<html>404 : Not Found</html>", "text/html"

    def write_facts(self, path) -> str:
        path.write_text(json.dumps(facts()))
        return str(path)
