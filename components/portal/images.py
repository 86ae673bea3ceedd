"""What the portal runs: its images, object names, ports, labels and paths (the portal's `chart.py`)."""

from __future__ import annotations

from ..settings.portal import SERVICE_NAME, SERVICE_PORT

# Official PostgreSQL image, exact tag (offline-images/images.lock, feature `portal`).
POSTGRES_IMAGE = "docker.io/library/postgres:17.6-bookworm"
POSTGRES_UID = 999  # the `postgres` user of the official Debian image
# The portal image, built from portal/Dockerfile (never pulled from a registry: see offline.py and
# images.lock's `build:` entry). `localhost/` marks an image that exists only where it was imported.
PORTAL_IMAGE_NAME = "localhost/jhub-portal"
PORTAL_IMAGE_TAG = "0.1.0"
PORTAL_IMAGE = f"{PORTAL_IMAGE_NAME}:{PORTAL_IMAGE_TAG}"
PORTAL_IMAGE_FILE = f"images/jhub-portal-{PORTAL_IMAGE_TAG}.tar"
PORTAL_UID = 10001  # the Dockerfile's `portal` user

PORTAL = SERVICE_NAME  # Deployment, Service, ServiceAccount, Role
PORT = SERVICE_PORT
DB = f"{SERVICE_NAME}-db"  # StatefulSet and its headless Service
DB_PORT = 5432
DB_NAME = DB_USER = "portal"
AGENT = f"{SERVICE_NAME}-gpu-agent"  # DaemonSet and its ServiceAccount
# The agents' credential: a projected ServiceAccount token for this audience (only the portal accepts it; the
# API server does not), bound to the agent's pod and node, valid this long (the least Kubernetes allows);
# the kubelet replaces it at 80 % of that.
AGENT_TOKEN_AUDIENCE = "jhub-portal"
AGENT_TOKEN_SECONDS = 600
AGENT_TOKEN_DIR = "/var/run/secrets/jhub-portal"

# The z2jh chart's hub: its pod labels and its API Service (what the portal calls for OAuth and the hub API).
HUB_POD_LABELS = {"app": "jupyterhub", "component": "hub"}
HUB_API_PORT = 8081

# MicroK8s: Calico's default pod pool, and where the kubelet serves the pod-resources API.
POD_CIDR = "10.1.0.0/16"
KUBELET_POD_RESOURCES_DIR = "/var/snap/microk8s/common/var/lib/kubelet/pod-resources"
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}  # set by the GPU Operator's feature discovery
NVIDIA_RUNTIME_CLASS = "nvidia"  # the GPU Operator's container toolkit configures it
# Per-user namespaces (MPI jobs) carry this label; the collector chooses namespaces by it.
USER_NAMESPACE_LABEL = "jhub.io/user-namespace=true"
# Where the portal mounts the users' shared-hostpath storage, for its storage view.
STORAGE_MOUNT = "/storage"
