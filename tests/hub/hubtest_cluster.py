"""Node and pod objects shaped exactly as the Kubernetes API returns them (camelCase JSON)."""

A100 = "NVIDIA-A100-SXM4-80GB"
L40S = "NVIDIA-L40S"


def node(name, *, cpu, memory, gpus=0, model=None, ready=True, cordoned=False, taints=(), labels=None, devices=None):
    """`devices`: more allocatable extended resources, e.g. {"nvidia.com/mig-1g.10gb": 7}."""
    all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})}
    if model:
        all_labels["nvidia.com/gpu.product"] = model
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "900Gi"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    allocatable.update({k: str(v) for k, v in (devices or {}).items()})
    spec = {"podCIDR": "10.1.0.0/24"}
    if cordoned:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = list(taints)
    return {
        "metadata": {"name": name, "labels": all_labels, "uid": f"uid-{name}"},
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": dict(allocatable),
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True" if ready else "Unknown"},
            ],
        },
    }


def pod(name, node_name, *, phase="Running", cpu="0", memory="0", gpus=0, namespace="jhub", user=None,
        limits_only=False, init=None, devices=None):
    resources = {"cpu": cpu, "memory": memory}
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
    resources.update({k: str(v) for k, v in (devices or {}).items()})
    container = {"name": "main", "image": "busybox",
                 "resources": {"limits": resources} if limits_only else {"requests": resources, "limits": resources}}
    spec = {"containers": [container]}
    if node_name:
        spec["nodeName"] = node_name
    if init:
        spec["initContainers"] = [{"name": "init", "image": "busybox", "resources": {"requests": init}}]
    meta = {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": {}, "annotations": {}}
    if user:
        meta["labels"] = {"component": "singleuser-server", "hub.jupyter.org/username": user.lower()}
        meta["annotations"] = {"hub.jupyter.org/username": user}
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def standard_cluster():
    """Two GPU models, a CPU-only node, a cordoned node, a NotReady node; pods in every phase.

    gpu-a1  A100 x8, 128 CPU, 1000Gi: Running 4-GPU pod + bound Pending 2-GPU pod -> 2 GPUs, 80 CPU, 616Gi free
            (a Succeeded 4-GPU pod and a Failed 2-GPU pod there count for nothing)
    gpu-a2  A100 x8, cordoned
    gpu-l1  L40S x4, 64 CPU, 256Gi: only a Succeeded 4-GPU pod -> all free
    gpu-l2  L40S x4, NotReady
    cpu-1   no GPU, 16 CPU, 64Gi: Running 10-CPU pod -> 6 CPU, 48Gi free
    plus an unscheduled Pending pod (no nodeName) that counts nowhere.
    """
    nodes = [
        node("gpu-a1", cpu="128", memory="1000Gi", gpus=8, model=A100),
        node("gpu-a2", cpu="128", memory="1000Gi", gpus=8, model=A100, cordoned=True),
        node("gpu-l1", cpu="64000m", memory="256Gi", gpus=4, model=L40S),
        node("gpu-l2", cpu="64", memory="256Gi", gpus=4, model=L40S, ready=False),
        node("cpu-1", cpu="16", memory="64Gi"),
    ]
    pods = [
        pod("train-1", "gpu-a1", cpu="32", memory="256Gi", gpus=4),
        pod("train-2", "gpu-a1", phase="Pending", cpu="16", memory="128Gi", gpus=2, limits_only=True),
        pod("done-1", "gpu-a1", phase="Succeeded", cpu="32", memory="256Gi", gpus=4),
        pod("crashed", "gpu-a1", phase="Failed", cpu="16", memory="128Gi", gpus=2),
        pod("done-2", "gpu-l1", phase="Succeeded", cpu="60", memory="240Gi", gpus=4),
        pod("web", "cpu-1", cpu="10", memory="16Gi"),
        pod("waiting", None, phase="Pending", cpu="100", memory="900Gi", gpus=8),
    ]
    return nodes, pods


def profiles_cfg(**overrides):
    cfg = {
        "images": [
            {"name": "pytorch", "image": "myorg/pytorch-jhub:24.10", "description": "PyTorch + CUDA", "default": True},
            {"name": "minimal", "image": "quay.io/jupyter/minimal-notebook:2024-10-07", "description": "",
             "default": False},
        ],
        "gpuResource": "nvidia.com/gpu",
        "gpuProductLabel": "nvidia.com/gpu.product",
        "sharedGpuResource": "nvidia.com/gpu.shared",
        "migResourcePrefix": "nvidia.com/mig-",
        "rdmaResource": "rdma/rdma_shared_device_a",
        "watch": False,
        "reserve": {"cpu": 2, "memoryGiB": 8},
        "cpuPresets": [{"cpu": 2, "memoryGiB": 8}, {"cpu": 8, "memoryGiB": 32}, {"cpu": 96, "memoryGiB": 64}],
        "maxGpusPerServer": 0,
        "nodeChoice": True,
    }
    cfg.update(overrides)
    return cfg


H100 = "NVIDIA-H100-80GB-HBM3"
RDMA = "rdma/rdma_shared_device_a"


def gpu_operator_cluster():
    """What the GPU Operator (device plugin + GFD) and the Network Operator advertise, mixed models:

    a100-mixed   A100 x4, MIG strategy mixed: 2 GPUs whole, one as 7 x 1g.10gb, one as 2 x 3g.40gb;
                 128 CPU, 1000Gi. Two 1g.10gb slices in use -> 5 of 7 free.
    a100-single  A100 x8, MIG strategy single, every GPU 7 x 1g.10gb: nvidia.com/gpu: 56, product
                 NVIDIA-A100-SXM4-80GB-MIG-1g.10gb; 128 CPU, 1000Gi; empty.
    h100-shared  H100 x2 time-sliced 4 ways (renameByDefault false): nvidia.com/gpu: 8, product -SHARED,
                 InfiniBand (rdma/rdma_shared_device_a: 63); 64 CPU, 512Gi. 5 replicas in use -> 3 of 8 free.
    l40s-mps     L40S x4 shared by MPS 2 ways, renameByDefault true: nvidia.com/gpu.shared: 8; 64 CPU, 256Gi.
    h100-ib      H100 x8 whole, InfiniBand; 224 CPU, 2000Gi; empty.
    cpu-1        no GPU, 16 CPU, 64Gi: 6 CPU, 48Gi free.
    """
    gfd = {"nvidia.com/gpu.present": "true"}
    nodes = [
        node("a100-mixed", cpu="128", memory="1000Gi", gpus=2, model=A100,
             labels={**gfd, "nvidia.com/mig.strategy": "mixed", "nvidia.com/gpu.count": "4",
                     "nvidia.com/gpu.memory": "81920", "nvidia.com/mig-1g.10gb.count": "7",
                     "nvidia.com/mig-1g.10gb.memory": "9728", "nvidia.com/mig-3g.40gb.count": "2",
                     "nvidia.com/mig-3g.40gb.memory": "40192"},
             devices={"nvidia.com/mig-1g.10gb": 7, "nvidia.com/mig-3g.40gb": 2}),
        node("a100-single", cpu="128", memory="1000Gi", gpus=56, model=A100 + "-MIG-1g.10gb",
             labels={**gfd, "nvidia.com/mig.strategy": "single", "nvidia.com/gpu.count": "56",
                     "nvidia.com/gpu.memory": "9728", "nvidia.com/gpu.slices.gi": "1"}),
        node("h100-shared", cpu="64", memory="512Gi", gpus=8, model=H100 + "-SHARED",
             labels={**gfd, "nvidia.com/gpu.count": "2", "nvidia.com/gpu.replicas": "4",
                     "nvidia.com/gpu.sharing-strategy": "time-slicing"},
             devices={RDMA: 63}),
        node("l40s-mps", cpu="64", memory="256Gi", model=L40S,
             labels={**gfd, "nvidia.com/gpu.count": "4", "nvidia.com/gpu.replicas": "2",
                     "nvidia.com/gpu.sharing-strategy": "mps"},
             devices={"nvidia.com/gpu.shared": 8}),
        node("h100-ib", cpu="224", memory="2000Gi", gpus=8, model=H100,
             labels={**gfd, "nvidia.com/gpu.count": "8", "nvidia.com/gpu.replicas": "1",
                     "nvidia.com/gpu.sharing-strategy": "none"},
             devices={RDMA: 63}),
        node("cpu-1", cpu="16", memory="64Gi"),
    ]
    pods = [
        pod("slice-1", "a100-mixed", cpu="4", memory="32Gi", devices={"nvidia.com/mig-1g.10gb": 1}),
        pod("slice-2", "a100-mixed", cpu="4", memory="32Gi", devices={"nvidia.com/mig-1g.10gb": 1}),
        pod("shared-1", "h100-shared", cpu="10", memory="40Gi", gpus=3),
        pod("shared-2", "h100-shared", cpu="10", memory="40Gi", gpus=2, devices={RDMA: 1}),
        pod("web", "cpu-1", cpu="10", memory="16Gi"),
    ]
    return nodes, pods


class UserObjects:
    """What the API server keeps of the objects the hub creates for a user's MPI namespace: namespaces, and in a
    namespace serviceaccounts, rolebindings, resourcequotas, secrets, and TokenRequests. Served by routes of the
    kube_api fake API server with the API's own answers (201, 409 AlreadyExists, 404 NotFound, 200 on PUT/DELETE,
    PATCH as a merge patch). Each write gives the object a new `metadata.resourceVersion`; a PUT or PATCH that
    names an older one is refused 409 Conflict, as the API server does. `writes` lists (method, key) of every
    write that changed something.

    `add(namespace, resource, obj)` puts an object there as if someone else had made it (the hub's pull
    Secret, a namespace's `default` ServiceAccount)."""

    COLLECTIONS = {"serviceaccounts", "resourcequotas", "secrets", "rolebindings"}

    def __init__(self, server, namespaces=("jhub",)):
        # (namespace or "", resource, name) -> object; the hub's own namespace exists already
        self.objects = {("", "namespaces", n): {"metadata": {"name": n}} for n in namespaces}
        self.version, self.writes = 0, []
        for method in ("POST", "PUT", "PATCH", "DELETE", "GET"):
            server.route(method, "/api/v1/namespaces*", self._answer)
            server.route(method, "/apis/rbac.authorization.k8s.io/v1/namespaces/*", self._answer)
        self.tokens = []

    @staticmethod
    def _status(code, reason):
        return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code}

    def _answer(self, request):
        import json as _json

        parts = request["path"].strip("/").split("/")
        parts = parts[2:] if parts[0] == "api" else parts[3:]  # drop api/v1 or apis/<group>/<version>
        body = _json.loads(request["body"]) if request["body"] else {}
        method = request["method"]
        if parts == ["namespaces"] and method == "POST":
            return self._create(("", "namespaces", body["metadata"]["name"]), body)
        if len(parts) == 2:  # namespaces/<name>
            key = ("", "namespaces", parts[1])
            return (200, self.objects[key]) if key in self.objects else self._status(404, "NotFound")
        namespace, resource, rest = parts[1], parts[2], parts[3:]
        if ("", "namespaces", namespace) not in self.objects:
            return self._status(404, "NotFound")
        if resource not in self.COLLECTIONS:
            return self._status(404, "NotFound")
        if not rest and method == "POST":
            body.setdefault("metadata", {})["namespace"] = namespace
            return self._create((namespace, resource, body["metadata"]["name"]), body)
        key = (namespace, resource, rest[0])
        if rest[1:] == ["token"] and method == "POST":
            if key not in self.objects:
                return self._status(404, "NotFound")
            token = f"token-{namespace}-{rest[0]}-{len(self.tokens)}"
            self.tokens.append((namespace, rest[0], body["spec"]["expirationSeconds"], token))
            return 201, {**body, "status": {"token": token, "expirationTimestamp": "2030-01-01T00:00:00Z"}}
        if key not in self.objects:
            return self._status(404, "NotFound")
        if method in ("PUT", "PATCH"):
            wanted = (body.get("metadata") or {}).get("resourceVersion")
            if wanted is not None and wanted != self.objects[key]["metadata"].get("resourceVersion"):
                return self._status(409, "Conflict")
            from tests.support.kubeapi import _merge

            return 200, self._keep(method, key, body if method == "PUT" else _merge(self.objects[key], body))
        if method == "DELETE":
            self.writes.append((method, key))
            return 200, self.objects.pop(key)
        return 200, self.objects[key]

    def _keep(self, method, key, body):
        self.version += 1
        body = {**body, "metadata": {**body.get("metadata", {}), "resourceVersion": str(self.version)}}
        self.objects[key] = body
        self.writes.append((method, key))
        return body

    def add(self, namespace, resource, obj):
        return self._keep("ADD", (namespace, resource, obj["metadata"]["name"]), obj)

    def _create(self, key, body):
        if key in self.objects:
            return self._status(409, "AlreadyExists")
        return 201, self._keep("POST", key, body)

    def created(self):
        """What the hub made (without the namespaces that existed before)."""
        return {k: v for k, v in self.objects.items() if v.get("kind") or k[1] != "namespaces"}

    def of(self, resource):
        return {k: v for k, v in self.objects.items() if k[1] == resource}
