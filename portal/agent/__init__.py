"""The GPU agent: ``python -m portal.agent``, one per GPU node (a DaemonSet on GPU nodes only).

Every interval it reads each GPU (and each MIG slice) through NVML -- utilisation, memory used and total,
power, temperature, UUID; for MIG slices, which have no NVML utilisation, GPM's SM utilisation or an
``active`` flag from their processes (portal/agent/gpm.py) --, finds the pod and container holding it
through the kubelet's pod-resources API (by process, PID -> cgroup -> pod UID, where pods share a GPU),
and sends the samples to the portal's ``POST /api/gpu/samples``, in the cluster with its pod's projected
ServiceAccount token (bound to its node). It buffers across a portal outage (bounded: the
oldest samples go first, and are counted) and never makes the portal count a sample twice. Without a GPU
or without NVML it logs one line and idles until stopped (exit 0 on SIGTERM), so it never crash-loops.

Environment:
  PORTAL_URL                     the portal, e.g. http://portal.jhub.svc:29781 (required)
  PORTAL_AGENT_TOKEN_FILE        a file holding the token, read again for every send: in the cluster the
                                 projected ServiceAccount token (audience jhub-portal) the kubelet rotates
  PORTAL_AGENT_TOKEN             or the token itself: a portal API token of role "agent" (PORTAL_API_TOKENS),
                                 for a trial without Kubernetes (required: exactly one of the two)
  NODE_NAME                      this node's name (required; from the downward API: spec.nodeName)
  AGENT_INTERVAL_SECONDS         seconds between samples (default 10, at least 1)
  AGENT_BUFFER_MAX_SAMPLES       samples kept while the portal is away (default 50000: about 17 h of an
                                 8-GPU node at 10 s); beyond it the oldest are dropped and counted
  AGENT_BATCH_MAX_SAMPLES        samples per request (default 2000, at most 10000)
  AGENT_HTTP_TIMEOUT_SECONDS     per request (default 10)
  KUBELET_POD_RESOURCES_SOCKET   the kubelet's pod-resources socket (default, MicroK8s:
                                 /var/snap/microk8s/common/var/lib/kubelet/pod-resources/kubelet.sock)
  AGENT_GPU_RESOURCE_PREFIX      extended resources that are GPUs (default nvidia.com/: nvidia.com/gpu and
                                 MIG resources such as nvidia.com/mig-1g.10gb)
  AGENT_PROC_ROOT                where the host's /proc is (default /proc: the pod runs with hostPID)
  AGENT_MIG_ACTIVE_MEMORY_MIB    MIG slices on GPUs without GPM (A100): a slice is active while a compute
                                 process holds more than this much of its memory (default 0: any process);
                                 on Hopper and later a slice's SM utilisation comes from GPM (gpm.py)

The pod needs: hostPID (processes -> cgroups), the pod-resources socket mounted (hostPath, read-only),
the NVIDIA runtime or driver libraries (NVIDIA_VISIBLE_DEVICES=all, no GPU request of its own).
"""
