"""Every object the portal feature builds validates against the real Kubernetes 1.32 API schemas, both as
the pure builders make it and as the program registers it under mocks; and the pods are locked down."""

from __future__ import annotations

import kubernetes_validate
import pytest

from components.portal import images as im
from components.portal import manifests as m
from tests.portal_deploy.deploy_support import manifest_of, portal_children, run_dev

K8S_VERSION = "1.32"
NS = "jhub"


def valid(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def pod(**kw) -> m.PortalPod:
    base = dict(namespace=NS, control_plane="gpu01", host_port=29781, env={"PORTAL_TIMEZONE": "Asia/Taipei"},
                secret_name="portal-secret-x", secret_keys=("PORTAL_DATABASE_URL",), source_digest="ab" * 32)
    base.update(kw)
    return m.PortalPod(**base)


BUILT = {
    "db-secret": {**m.db_secret(NS, "pw")},
    "db-service": m.db_service(NS),
    "db-statefulset": m.db_statefulset(NS, "10Gi", None),
    "db-statefulset-class": m.db_statefulset(NS, "20Gi", "fast"),
    "db-network-policy": m.db_network_policy(NS),
    "service-account": m.service_account(NS),
    "role": m.role(NS),
    "role-binding": m.role_binding(NS, im.PORTAL, "Role", im.PORTAL, NS),
    "cluster-reader": m.cluster_reader_role(NS, False),
    "cluster-reader-user-namespaces": m.cluster_reader_role(NS, True),
    "cluster-reader-binding": m.cluster_reader_binding(NS),
    "token-reviewer": m.token_reviewer_role(NS),
    "token-reviewer-binding": m.cluster_binding(NS, "token-reviewer"),
    "pod-stopper": m.pod_stopper_role(NS),
    "portal-secret": {**m.portal_secret(NS, {"PORTAL_DATABASE_URL": "x"}),
                      "metadata": {"name": "portal-secret-x", "namespace": NS}},
    "deployment": m.portal_deployment(pod()),
    "deployment-storage": m.portal_deployment(pod(storage_host_path="/srv/users", storage_owner=(1000, 100))),
    "service": m.portal_service(NS),
    "network-policy": m.portal_network_policy(NS),
    "agent-service-account": m.agent_service_account(NS),
    "agent": m.agent_daemonset(NS, "http://jhub-portal.jhub.svc:29781", "cd" * 32),
}


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_manifest_is_valid(name):
    valid(BUILT[name])


def test_a_broken_manifest_is_refused():
    broken = m.portal_service(NS)
    broken["spec"]["ports"][0]["port"] = "not-a-port"
    with pytest.raises(kubernetes_validate.ValidationError):
        valid(broken)


def test_every_registered_object_is_valid(secret_steps):
    run = run_dev(gpuAgent=True)
    kinds = []
    for reg in portal_children(run):
        if not reg.type.startswith("kubernetes:"):
            continue
        manifest = manifest_of(reg)
        manifest["metadata"].setdefault("name", f"{reg.name}-x")
        valid(manifest)
        kinds.append(manifest["kind"])
    assert sorted(set(kinds)) == ["ClusterRole", "ClusterRoleBinding", "DaemonSet", "Deployment", "NetworkPolicy",
                                  "Role", "RoleBinding", "Secret", "Service", "ServiceAccount", "StatefulSet"]


def containers(manifest: dict) -> list[dict]:
    spec = manifest["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def test_with_the_storage_view_the_portal_runs_as_the_users_owner():
    spec = BUILT["deployment-storage"]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsUser"] == 1000 and spec["securityContext"]["runAsGroup"] == 100
    assert {"name": "storage", "hostPath": {"path": "/srv/users", "type": "Directory"}} in spec["volumes"]
    assert {"name": "storage", "mountPath": "/storage"} in spec["containers"][0]["volumeMounts"]
    assert BUILT["deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == im.PORTAL_UID


@pytest.mark.parametrize("name", ["deployment", "deployment-storage", "db-statefulset"])
def test_portal_and_database_run_non_root_on_a_read_only_root(name):
    manifest = BUILT[name]
    spec = manifest["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] > 0
    for container in containers(manifest):
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["privileged"] is False
        assert any(v["mountPath"] == "/tmp" for v in container["volumeMounts"]), "a writable /tmp"
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        for item in container["env"]:  # secrets only by reference
            assert "PASSWORD" not in item["name"] or "valueFrom" in item


def test_the_portal_probes_health_and_readiness_and_migrates_first():
    spec = BUILT["deployment"]["spec"]["template"]["spec"]
    portal = spec["containers"][0]
    assert portal["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert portal["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert portal["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert [c["args"] for c in spec["initContainers"]] == [["migrate"]]
    assert {"name": "PORTAL_DATABASE_URL", "valueFrom": {"secretKeyRef": {
        "name": "portal-secret-x", "key": "PORTAL_DATABASE_URL"}}} in spec["initContainers"][0]["env"]
    assert portal["ports"] == [{"name": "http", "containerPort": 29781, "hostPort": 29781, "protocol": "TCP"}]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "gpu01"}
    assert BUILT["deployment"]["spec"]["strategy"] == {"type": "Recreate"}


def test_the_database_claim_is_retained_and_the_password_follows_the_secret():
    spec = BUILT["db-statefulset"]["spec"]
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claim = spec["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "10Gi" and "storageClassName" not in claim
    assert BUILT["db-statefulset-class"]["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast"
    init = spec["template"]["spec"]["initContainers"][0]
    assert "ALTER ROLE" in init["command"][-1]
    assert {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": im.DB, "key": "POSTGRES_PASSWORD"}}} \
        in init["env"]
    assert spec["template"]["spec"]["containers"][0]["image"] == im.POSTGRES_IMAGE


def test_network_policies_admit_only_the_hub_the_agents_and_browsers():
    rules = BUILT["network-policy"]["spec"]["ingress"]
    sources = [rule["from"][0] for rule in rules]
    assert {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}} in sources
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "gpu-agent",
                                            "app.kubernetes.io/name": "jhub-portal"}}} in sources
    assert {"ipBlock": {"cidr": "0.0.0.0/0", "except": [im.POD_CIDR]}} in sources  # not from other pods
    assert len(sources) == 3 and all(rule["ports"] == [{"port": 29781, "protocol": "TCP"}] for rule in rules)
    db = BUILT["db-network-policy"]["spec"]["ingress"]
    assert db == [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "portal",
                                                             "app.kubernetes.io/name": "jhub-portal"}}}],
                   "ports": [{"port": 5432, "protocol": "TCP"}]}]


def test_the_gpu_agent_runs_on_gpu_nodes_with_the_nvidia_runtime_and_no_privileges():
    spec = BUILT["agent"]["spec"]["template"]["spec"]
    agent = spec["containers"][0]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["runtimeClassName"] == "nvidia" and spec["hostPID"] is True
    assert agent["command"] == ["python", "-m", "portal.agent"] and agent["image"] == im.PORTAL_IMAGE
    sc = agent["securityContext"]
    assert sc["privileged"] is False and sc["capabilities"] == {"drop": ["ALL"]} and sc["readOnlyRootFilesystem"]
    env = {e["name"]: e for e in agent["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["NVIDIA_VISIBLE_DEVICES"]["value"] == "all"
    assert env["PORTAL_URL"]["value"] == "http://jhub-portal.jhub.svc:29781"
    assert env["KUBELET_POD_RESOURCES_SOCKET"]["value"] == f"{im.KUBELET_POD_RESOURCES_DIR}/kubelet.sock"
    assert env["AGENT_INTERVAL_SECONDS"]["value"] == "10"
    mount = agent["volumeMounts"][0]
    assert mount == {"name": "pod-resources", "mountPath": im.KUBELET_POD_RESOURCES_DIR, "readOnly": True}


def test_the_gpu_agent_authenticates_with_a_projected_token_of_its_own_service_account():
    """No shared secret: the kubelet projects a short-lived token for the portal's audience, bound to the
    agent's pod (and so its node), and refreshes the file the agent reads for every send."""
    spec = BUILT["agent"]["spec"]["template"]["spec"]
    agent = spec["containers"][0]
    assert spec["serviceAccountName"] == im.AGENT == "jhub-portal-gpu-agent"
    assert spec["automountServiceAccountToken"] is False, "no token for the API server"
    (volume,) = [v for v in spec["volumes"] if v["name"] == "portal-token"]
    assert volume == {"name": "portal-token", "projected": {"sources": [{"serviceAccountToken": {
        "audience": "jhub-portal", "expirationSeconds": 600, "path": "token"}}]}}
    assert {"name": "portal-token", "mountPath": "/var/run/secrets/jhub-portal", "readOnly": True} \
        in agent["volumeMounts"]
    env = {e["name"]: e for e in agent["env"]}
    assert env["PORTAL_AGENT_TOKEN_FILE"] == {"name": "PORTAL_AGENT_TOKEN_FILE",
                                              "value": "/var/run/secrets/jhub-portal/token"}
    assert "PORTAL_AGENT_TOKEN" not in env and not any("secretKeyRef" in e.get("valueFrom", {})
                                                       for e in agent["env"])
    account = BUILT["agent-service-account"]
    assert account["metadata"] == {"name": im.AGENT, "namespace": NS, "labels": account["metadata"]["labels"]}
    assert account["automountServiceAccountToken"] is False
