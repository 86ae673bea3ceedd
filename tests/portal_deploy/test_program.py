"""The whole program under Pulumi mocks, from the dev stack: the portal is deployed by default, its secrets
are generated once and stay secret in inputs and outputs, the same config gives byte-identical inputs, and
the hub and the portal share the tokens they must."""

from __future__ import annotations

import hashlib
import json

import pytest

from components.portal import images as im
from tests.portal_deploy.deploy_support import (HUB_TYPE, PORTAL_TYPE, RANDOM_STEPS, dev_config, hub_values,
                                                made_secret, manifest_of, ok, portal_children, run_dev, unwrap)
from tests.support.program import ROOT, is_secret_wrapper, mock_address, plain_strings, run_program, stack_config

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def portal_env(run) -> dict:
    """The portal container's environment, secret references resolved from the registered Secret."""
    secret = unwrap(run.named("portal-secret").inputs)["stringData"]
    container = manifest_of(run.named("portal-deployment"))["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] if "value" in e else secret.get(e["valueFrom"]["secretKeyRef"]["key"])
            for e in container["env"]}


def test_the_dev_stack_deploys_the_portal_under_its_component(secret_steps):
    run = run_dev()
    component = next(r for r in run.registrations if r.type == PORTAL_TYPE)
    children = {r.name: r for r in portal_children(run)}
    for name in ("portal-deployment", "portal-secret", "portal-service", "portal-network-policy", "portal-db",
                 "portal-db-secret", "portal-db-service", "portal-db-network-policy", "portal-service-account",
                 "portal-role", "portal-role-binding", "portal-cluster-reader", "portal-cluster-reader-binding",
                 "portal-image-build"):
        assert name in children, f"{name} is not a child of the portal component"
    assert "gpu-agent" not in children, "no GPU agent without jhub:gpu.operator"
    provider = run.named("microk8s")
    for reg in children.values():
        if reg.type.startswith("kubernetes:"):
            assert reg.inputs.get("metadata", {}).get("namespace", "jhub") == "jhub"
    deployment = run.named("portal-deployment")
    urns = {r.name: r.urn for r in run.resources()}
    for needed in ("namespace", "vm-node", "portal-secret", "portal-role-binding", "portal-db", "vm-portal-image"):
        assert urns[needed] in deployment.dependencies, f"the Deployment waits for {needed}"
    assert provider.urn and component.urn


def test_outputs_portal_url_and_a_secret_admin_token(secret_steps):
    run = run_dev()
    assert run.outputs["portalUrl"] == f"http://{mock_address('vm')}:29781"
    assert run.outputs["portalAdminToken"] == made_secret("portal-admin-token")
    assert "portalAdminToken" in run.secret_outputs and "portalUrl" not in run.secret_outputs


def test_hub_and_portal_share_the_tokens(secret_steps):
    run = run_dev()
    env = portal_env(run)
    tokens = json.loads(env["PORTAL_API_TOKENS"])
    sha = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    assert tokens == {"admin": {"role": "admin", "sha256": sha(made_secret("portal-admin-token"))},
                      "hub": {"role": "hub", "sha256": sha(made_secret("portal-api-token"))}}
    hub_env = unwrap(run.named("hub-secret").inputs)["stringData"]
    assert hub_env["JHUB_PORTAL_TOKEN"] == made_secret("portal-api-token")
    assert hub_env["JHUB_PORTAL_SERVICE_TOKEN"] == env["PORTAL_OAUTH_CLIENT_SECRET"] == made_secret(
        "portal-service-token")
    password = made_secret("portal-db-password")
    assert env["PORTAL_DATABASE_URL"] == f"postgresql+psycopg://portal:{password}@jhub-portal-db.jhub.svc:5432/portal"
    assert unwrap(run.named("portal-db-secret").inputs)["stringData"] == {"POSTGRES_PASSWORD": password}
    assert env["PORTAL_SESSION_SECRET"] == made_secret("portal-session-secret")


def test_generated_secrets_are_made_once_and_kept_secret(secret_steps):
    run = run_dev(gpuAgent=True)
    for name in RANDOM_STEPS:
        step = run.named(name)
        assert step.type == "command:local:Command"
        assert "stdout" in step.additional_secret_outputs, f"{name}: its output is secret in the state"
        assert not step.inputs.get("triggers"), f"{name}: nothing makes it run again"
    secrets = {made_secret(name) for name in RANDOM_STEPS}
    for reg in run.resources():
        for path, text in plain_strings(reg.inputs):
            assert not any(s in text for s in secrets), f"{reg.name}{path} holds a secret in plain text"
    for name in ("portal-secret", "portal-db-secret"):
        data = run.named(name).inputs["stringData"]
        assert is_secret_wrapper(data) or (data and all(is_secret_wrapper(v) for v in data.values())), \
            f"{name}: its data is secret"
    for name, value in run.outputs.items():
        if name not in run.secret_outputs:
            assert not any(s in json.dumps(value) for s in secrets), f"output {name} shows a secret"


def test_the_same_config_gives_byte_identical_inputs(secret_steps):
    def inputs():
        run = run_dev(gpuAgent=True)
        return json.dumps(sorted(([r.type, r.name, r.inputs] for r in run.resources()), key=lambda x: x[:2]),
                          sort_keys=True)

    assert inputs() == inputs()


def test_a_configured_api_token_wins(secret_steps):
    token = "a-configured-limits-token-0123456789"
    config = dev_config(apiToken=token)
    run = ok(run_program(config, secret_keys=("jhub:portal",)))
    tokens = json.loads(portal_env(run)["PORTAL_API_TOKENS"])
    assert tokens["hub"]["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert unwrap(run.named("hub-secret").inputs)["stringData"]["JHUB_PORTAL_TOKEN"] == token
    assert not [r for r in run.resources() if r.name == "portal-api-token"], "nothing generated"


def test_an_external_database_replaces_the_in_cluster_one(secret_steps):
    url = "postgresql+psycopg://portal:s3cret-pw@db.lab.example:5432/portal"
    run = ok(run_program(dev_config(databaseUrl=url), secret_keys=("jhub:portal",)))
    names = {r.name for r in run.resources()}
    assert not names & {"portal-db", "portal-db-secret", "portal-db-password", "portal-db-service"}
    assert portal_env(run)["PORTAL_DATABASE_URL"] == url
    for reg in run.resources():
        assert not [p for p, text in plain_strings(reg.inputs) if "s3cret-pw" in text], reg.name


def test_the_gpu_agents_use_node_bound_service_account_tokens_and_no_shared_secret(secret_steps):
    """The DaemonSet mounts a projected token of its own ServiceAccount for the portal's audience; the
    portal reviews those (its ClusterRole may create tokenreviews) and holds no agent-role API token, which
    its PORTAL_AGENT_AUTH=kubernetes would refuse anyway."""
    run = run_dev(gpuAgent=True)
    agent = manifest_of(run.named("gpu-agent"))
    spec = agent["spec"]["template"]["spec"]
    assert agent["kind"] == "DaemonSet" and spec["nodeSelector"] == im.GPU_NODE_SELECTOR
    assert spec["serviceAccountName"] == im.AGENT and spec["automountServiceAccountToken"] is False
    projected = [v["projected"]["sources"] for v in spec["volumes"] if "projected" in v]
    assert projected == [[{"serviceAccountToken": {"audience": "jhub-portal", "expirationSeconds": 600,
                                                   "path": "token"}}]]
    urns = {r.name: r.urn for r in run.resources()}
    assert urns["gpu-agent-service-account"] in run.named("gpu-agent").dependencies
    assert urns["portal-token-reviewer-binding"] in run.named("portal-deployment").dependencies
    reviewer = manifest_of(run.named("portal-token-reviewer"))
    assert reviewer["kind"] == "ClusterRole" and reviewer["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}]
    env = portal_env(run)
    assert (env["PORTAL_AGENT_AUTH"], env["PORTAL_AGENT_AUDIENCE"], env["PORTAL_AGENT_SERVICE_ACCOUNT"]) == (
        "kubernetes", "jhub-portal", "jhub:jhub-portal-gpu-agent")
    assert sorted(json.loads(env["PORTAL_API_TOKENS"])) == ["admin", "hub"]
    names = {r.name for r in run.resources()}
    assert not names & {"portal-agent-token", "gpu-agent-secret"}, "no shared agent secret"


def test_the_deployed_portal_boots_refusing_unbound_agent_tokens(secret_steps):
    """The portal's own environment, as generated, loads; adding an agent-role API token to it is refused."""
    from portal.app.settings import load_web_settings
    from portal.settings import SettingsError

    env = portal_env(run_dev(gpuAgent=True))
    fields = {"agent_auth": env["PORTAL_AGENT_AUTH"], "agent_audience": env["PORTAL_AGENT_AUDIENCE"],
              "agent_service_account": env["PORTAL_AGENT_SERVICE_ACCOUNT"], "session_secret": "s" * 40}
    tokens = json.loads(env["PORTAL_API_TOKENS"])
    assert load_web_settings(**fields, api_tokens=tokens).agent_auth == "kubernetes"
    tokens["agent"] = {"role": "agent", "sha256": hashlib.sha256(b"x").hexdigest()}
    with pytest.raises(SettingsError, match="bound to no node"):
        load_web_settings(**fields, api_tokens=tokens)


def test_portal_settings_follow_the_stack(secret_steps):
    env = portal_env(run_dev(timezone="Europe/Berlin", rates={"gpuHour": 6.5}))
    assert env["PORTAL_TIMEZONE"] == "Europe/Berlin" and env["PORTAL_GPU_RATE_PER_HOUR"] == "6.5"
    assert env["PORTAL_HUB_NAMESPACE"] == "jhub" and env["PORTAL_USER_STORAGE_SIZE"] == "10Gi"
    assert env["PORTAL_KUBE_CONFIG_MODE"] == "in-cluster" and env["PORTAL_AUTO_MIGRATE"] == "false"
    assert env["PORTAL_HUB_API_URL"] == "http://hub.jhub.svc:8081/hub/api"


def test_users_mpi_namespaces_are_watched_and_their_pods_billed_by_the_users_label(secret_steps):
    env = portal_env(run_dev())
    assert "PORTAL_USER_NAMESPACE_LABEL" not in env and "PORTAL_POD_LABEL_SELECTOR" not in env
    env = portal_env(ok(run_program(stack_config(ROOT / "Pulumi.dev.yaml", {"jhub:mpi": {"enabled": True}}))))
    assert env["PORTAL_USER_NAMESPACE_LABEL"] == "jhub.io/user-namespace=true"
    assert env["PORTAL_POD_LABEL_SELECTOR"] == "hub.jupyter.org/username"  # notebooks and MPIJob pods alike


def test_online_mode_builds_the_image_here_and_imports_it_on_the_node(secret_steps):
    run = run_dev()
    build = run.named("portal-image-build")
    # The bundle's own builder (scripts/bundler/build.py), run from the project folder
    assert ('"$py" scripts/bundle.py --dir offline-images --build localhost/jhub-portal:0.1.0'
            in build.inputs["create"])
    assert str(ROOT) not in build.inputs["create"], "relative to the project: a moved checkout still builds"
    assert build.inputs["triggers"], "a change to portal/ rebuilds"
    imported = run.named("vm-portal-image")
    assert "images.sh" in imported.inputs["create"] and im.PORTAL_IMAGE in imported.inputs["create"]
    assert run.by_urn()[imported.parent].type == PORTAL_TYPE


def test_portal_disabled_deploys_nothing_of_it():
    run = ok(run_program(stack_config(ROOT / "Pulumi.dev.yaml", {"jhub:portal": {"enabled": False}})))
    assert not [r for r in run.registrations if r.type == PORTAL_TYPE]
    assert "portalUrl" not in run.outputs
    assert not [r for r in run.resources() if r.name.startswith("portal-")]
    assert [r for r in run.registrations if r.type == HUB_TYPE]


def test_shared_storage_is_mounted_for_the_storage_view(secret_steps):
    import yaml

    hub = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]["jhub:hub"]
    hub["storage"] = {"type": "shared-hostpath", "hostPath": "/srv/users", "size": "128Gi"}
    config = dev_config()
    config["jhub:hub"] = json.dumps(hub)
    run = ok(run_program(config))
    env = portal_env(run)
    assert env["PORTAL_STORAGE_BASE_PATH"] == "/storage" and env["PORTAL_USER_STORAGE_SIZE"] == "128Gi"
    spec = manifest_of(run.named("portal-deployment"))["spec"]["template"]["spec"]
    assert {"name": "storage", "hostPath": {"path": "/srv/users", "type": "Directory"}} in spec["volumes"]
    assert spec["securityContext"]["runAsUser"] == 1000, "the owner of the users' files, not root"


def test_a_lone_local_node_registers_the_address_people_open(secret_steps):
    """No configured address: the hub's values and the portal's sign-in use the address the node found for
    itself (not the loopback one), so a browser on another machine can sign in to the portal."""
    from tests.portal_deploy.deploy_support import hub_values

    run = run_dev()
    address = mock_address("vm")
    service = hub_values(run)["custom"]["jhub"]["portal"]["service"]
    env = portal_env(run)
    assert service["oauthRedirectUri"] == env["PORTAL_OAUTH_CALLBACK_URL"] == f"http://{address}:29781/oauth_callback"
    assert env["PORTAL_HUB_PUBLIC_URL"] == run.outputs["hubUrl"] == f"http://{address}:30080"


def test_idle_gpu_settings_and_reclaim_follow_the_stack(secret_steps, monkeypatch):
    """Off by default: no hub token for stopping servers, and the hub grants none. With reclaim on, the portal
    stops servers with its own service token (by reference to its Secret's key), which the hub then lets stop
    servers; the portal's own settings load from that environment."""
    from portal.gpu.settings import load_gpu_settings

    run = run_dev()
    env = portal_env(run)
    assert env["PORTAL_GPU_RECLAIM_ENABLED"] == "false" and "PORTAL_GPU_RECLAIM_HUB_TOKEN" not in env
    assert env["PORTAL_GPU_IDLE_THRESHOLD_PERCENT"] == "5.0" and env["PORTAL_GPU_IDLE_PERIOD_SECONDS"] == "7200.0"
    assert env["PORTAL_GPU_SAMPLE_RETENTION_DAYS"] == "7.0"
    assert hub_values(run)["custom"]["jhub"]["portal"]["service"]["stopServers"] is False

    run = run_dev(gpu={"reclaim": True, "reclaimWarning": "30m", "idlePeriod": "90m", "idleThresholdPercent": 2,
                       "sampleRetentionDays": 3})
    env = portal_env(run)
    assert env["PORTAL_GPU_RECLAIM_ENABLED"] == "true" and env["PORTAL_GPU_RECLAIM_WARNING_SECONDS"] == "1800.0"
    assert env["PORTAL_GPU_IDLE_PERIOD_SECONDS"] == "5400.0" and env["PORTAL_GPU_IDLE_THRESHOLD_PERCENT"] == "2.0"
    assert env["PORTAL_GPU_SAMPLE_RETENTION_DAYS"] == "3.0"
    assert env["PORTAL_GPU_RECLAIM_HUB_TOKEN"] == made_secret("portal-service-token")
    container = manifest_of(run.named("portal-deployment"))["spec"]["template"]["spec"]["containers"][0]
    ref = next(e for e in container["env"] if e["name"] == "PORTAL_GPU_RECLAIM_HUB_TOKEN")
    assert set(ref) == {"name", "valueFrom"} and ref["valueFrom"]["secretKeyRef"]["key"] == "PORTAL_OAUTH_CLIENT_SECRET"
    assert hub_values(run)["custom"]["jhub"]["portal"]["service"]["stopServers"] is True
    for name, value in env.items():
        if name.startswith("PORTAL_"):
            monkeypatch.setenv(name, value)
    gpu = load_gpu_settings()
    assert gpu.reclaim_enabled and gpu.reclaim_hub_api_url == "http://hub.jhub.svc:8081/hub/api"
    assert gpu.reclaim_hub_token.get_secret_value() == made_secret("portal-service-token")
    assert (gpu.idle_period_seconds, gpu.reclaim_warning_seconds, gpu.idle_threshold_percent) == (5400, 1800, 2)
