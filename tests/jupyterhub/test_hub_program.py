"""The whole program under Pulumi mocks with hub settings: the JupyterHub component, its release on the
cluster provider after the ready control plane, deterministic values and secrets that stay secret."""

from __future__ import annotations

import json

import pytest

from tests.jupyterhub.hubconfigs import AUTH, THREE_NODES, config, with_secrets
from tests.support.program import ROOT, is_secret_wrapper, plain_strings, run_program, stack_config
from tests.support.secrets_for_tests import ALL as SECRET_VALUES

RELEASE = "kubernetes:helm.sh/v3:Release"


def full_config(**kw) -> tuple[dict, tuple]:
    values = config(
        nodes=THREE_NODES, auth=AUTH["oidc"], tls={"enabled": True, "hostname": "hub.lab.example"},
        portal={"enabled": True}, hub={"storage": {"type": "shared-hostpath", "hostPath": "/srv/users"}}, **kw)
    return with_secrets(values)


def run_full(values, secret_keys):
    return run_program(values, secret_keys=secret_keys)


def ok(run):
    assert run.error is None, f"program failed: {run.error}"
    return run


def test_release_is_on_the_cluster_provider_after_the_ready_control_plane():
    run = ok(run_full(*full_config()))
    release = run.of_type(RELEASE)
    assert len(release) == 1
    urns = {r.name: r.urn for r in run.resources()}
    component = next(r for r in run.registrations if r.type == "jhub:jupyterhub:JupyterHub")
    assert release[0].parent == component.urn
    provider = run.named("microk8s")
    inputs = release[0].inputs
    assert urns["gpu01-node"] in release[0].dependencies, "the release waits for the ready control plane"
    assert urns["namespace"] in release[0].dependencies
    for name in ("namespace", "cluster-reader", "cluster-reader-binding", "hub-secret", "tls-secret"):
        reg = run.named(name)
        assert reg.parent == component.urn
    assert inputs["namespace"] == "jhub" and inputs["name"] == "jupyterhub"
    assert inputs["chart"] == "jupyterhub" and inputs["version"] == "4.4.0"
    assert inputs["repositoryOpts"]["repo"] == "https://hub.jupyter.org/helm-chart/"
    assert provider.urn  # registered; every kubernetes resource below names it
    assert run.outputs["hubUrl"] == "https://hub.lab.example"


def test_every_kubernetes_resource_uses_the_cluster_provider():
    from tests.support import program as support

    seen = {}
    original = support._RecordingMonitor.RegisterResource

    def spy(self, request):
        if request.type.startswith("kubernetes:"):
            seen[request.name] = request.provider
        return original(self, request)

    support._RecordingMonitor.RegisterResource = spy
    try:
        ok(run_full(*full_config()))
    finally:
        support._RecordingMonitor.RegisterResource = original
    assert set(seen) >= {"namespace", "cluster-reader", "cluster-reader-binding", "hub-secret", "tls-secret",
                         "jupyterhub"}
    assert all("::microk8s::" in p for p in seen.values()), seen


def test_values_are_byte_identical_across_runs():
    runs = [ok(run_full(*full_config())) for _ in range(2)]
    dumps = [json.dumps(r.of_type(RELEASE)[0].inputs["values"], sort_keys=True) for r in runs]
    assert dumps[0] == dumps[1]
    values = runs[0].of_type(RELEASE)[0].inputs["values"]
    assert not is_secret_wrapper(values), "values hold no secret, so they stay readable in diffs"
    assert values["hub"]["extraEnv"]["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == \
        "hub-secret-5f3a9c1e"
    assert values["ingress"]["tls"][0]["secretName"] == "tls-secret-5f3a9c1e"


def test_no_secret_in_any_plain_input():
    run = ok(run_full(*full_config()))
    leaks = []
    for reg in run.resources():
        for path, text in plain_strings(reg.inputs):
            for secret in SECRET_VALUES:
                if secret in text:
                    leaks.append((reg.name, path))
    assert leaks == [], f"secrets in plain inputs: {leaks}"
    hub_secret = run.named("hub-secret").inputs["stringData"]
    for key in ("OAUTH_CLIENT_SECRET", "JHUB_PORTAL_TOKEN", "JHUB_PORTAL_SERVICE_TOKEN"):
        assert is_secret_wrapper(hub_secret) or is_secret_wrapper(hub_secret[key]), key
    token = run.named("portal-service-token")  # generated once, the portal's OAuth client secret
    assert token.type == "command:local:Command" and token.inputs["logging"] == "none"
    assert token.additional_secret_outputs == ["stdout"]
    tls = run.named("tls-secret").inputs["stringData"]
    assert is_secret_wrapper(tls) or is_secret_wrapper(tls["tls.key"])


def test_the_leak_check_can_fail():
    """A secret put into a plain input is found by the same walk."""
    leaks = [p for p, t in plain_strings({"a": {"b": f"x{SECRET_VALUES[1]}"}}) if SECRET_VALUES[1] in t]
    assert leaks == [".a.b"]


def test_air_gapped_release_uses_the_local_chart_archive(tmp_path):
    from tests.program.test_offline import airgapped, make_bundle

    images_dir, charts_dir = make_bundle(tmp_path)
    values = airgapped(images_dir, charts_dir)
    values["jhub:hub"] = json.dumps({"storage": {"type": "shared-hostpath", "hostPath": "/srv/users"}})
    run = ok(run_program(values))
    inputs = run.of_type(RELEASE)[0].inputs
    assert inputs["chart"] == f"{charts_dir}/jupyterhub-4.4.0.tgz"
    assert "repositoryOpts" not in inputs and "version" not in inputs


@pytest.mark.parametrize("stack", ["Pulumi.dev.yaml", "Pulumi.airgapped.yaml"])
def test_example_stacks_build_the_hub(stack, tmp_path):
    values = stack_config(ROOT / stack)
    if "airgapped" in stack:
        from tests.program.test_offline import make_bundle

        images_dir, charts_dir = make_bundle(tmp_path)
        values["jhub:offline"] = json.dumps({"mode": "air-gapped", "dir": str(images_dir),
                                             "chartsDir": str(charts_dir)})
        ssh = json.loads(values["jhub:ssh"])
        values["jhub:ssh"] = json.dumps({**ssh, "privateKeyFile": str(ROOT / "tests/stacks/test_ed25519")})
    values, secret_keys = with_secrets(values)
    run = ok(run_program(values, secret_keys=secret_keys, stack=stack.split(".")[1]))
    release = run.of_type(RELEASE)[0].inputs["values"]
    assert release["proxy"]["service"] == {"nodePorts": {"http": 30080}, "type": "NodePort"}


def test_branding_files_become_config_maps_that_the_release_mounts(tmp_path):
    import base64

    logo = tmp_path / "logo.svg"
    logo.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    values = config(nodes=THREE_NODES, auth=AUTH["native"], hub={
        "storage": {"type": "shared-hostpath", "hostPath": "/srv/users"}, "branding": {"logo": str(logo)}})
    config_values, secret_keys = with_secrets(values)
    run = ok(run_program(config_values, secret_keys=secret_keys))
    config_map = run.named("branding-logo")
    assert config_map.type == "kubernetes:core/v1:ConfigMap"
    assert base64.b64decode(config_map.inputs["binaryData"]["logo.svg"]) == logo.read_bytes()
    release = run.of_type(RELEASE)[0]
    assert config_map.urn in release.dependencies
    sources = release.inputs["values"]["hub"]["extraVolumes"][0]["projected"]["sources"]
    assert sources == [{"configMap": {"items": [{"key": "logo.svg", "path": "logo.svg"}],
                                      "name": "branding-logo-5f3a9c1e"}}]


def test_the_namespace_and_the_hub_database_are_never_deleted():
    """A new jhub:hub.namespace or `pulumi destroy` must not take the hub's database and users' volumes with
    it: the namespace is a NamespacePatch (create or adopt) that Pulumi retains on delete, and the chart's
    database volume is kept by Helm."""
    from tests.support import program as support

    retained = {}
    original = support._RecordingMonitor.RegisterResource

    def spy(self, request):
        retained[request.name] = request.retainOnDelete
        return original(self, request)

    support._RecordingMonitor.RegisterResource = spy
    try:
        run = ok(run_full(*full_config()))
    finally:
        support._RecordingMonitor.RegisterResource = original
    namespace = run.named("namespace")
    assert namespace.type == "kubernetes:core/v1:NamespacePatch"
    assert namespace.inputs["metadata"]["name"] == "jhub"
    assert retained["namespace"] is True
    assert not retained["jupyterhub"], "the release itself is replaced and removed normally"
    values = run.of_type(RELEASE)[0].inputs["values"]
    assert values["hub"]["db"]["pvc"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_native_admins_without_a_password_get_a_generated_one_as_a_secret_output():
    from tests.support import program as support

    seen = {}
    original = support._RecordingMonitor.RegisterResource

    def spy(self, request):
        seen[request.name] = request
        return original(self, request)

    values = config(auth={"mode": "native", "native": {"adminPasswords": {"admin": "Configured-Pw-123"}}},
                    hub={"adminUsers": ["admin", "Alice.Smith"]})
    support._RecordingMonitor.RegisterResource = spy
    try:
        run = ok(run_program(values, secret_keys=("jhub:auth",)))
    finally:
        support._RecordingMonitor.RegisterResource = original
    made = run.named("admin-password-alice.smith")
    assert made.type == "command:local:Command" and made.inputs["logging"] == "none"
    assert "/dev/urandom" in made.inputs["create"]
    assert seen["admin-password-alice.smith"].additionalSecretOutputs == ["stdout"]
    assert not [r for r in run.resources() if r.name == "admin-password-admin"], "admin has a configured one"
    assert "hubAdminPasswords" in run.secret_outputs and set(run.outputs["hubAdminPasswords"]) == {"alice.smith"}
    hub_secret = run.named("hub-secret").inputs["stringData"]
    assert is_secret_wrapper(hub_secret) or is_secret_wrapper(hub_secret["JHUB_NATIVE_ADMIN_PASSWORDS"])


def test_dev_stack_deploys_as_committed_and_its_admin_gets_a_password():
    """Pulumi.dev.yaml holds no secret (./scripts/up.sh runs it unedited): its admin's password is generated."""
    run = ok(run_program(stack_config(ROOT / "Pulumi.dev.yaml"), stack="dev"))
    assert set(run.outputs["hubAdminPasswords"]) == {"admin"} and "hubAdminPasswords" in run.secret_outputs
    assert run.named("admin-password-admin").type == "command:local:Command"
    assert "JHUB_NATIVE_ADMIN_PASSWORDS" in run.of_type(RELEASE)[0].inputs["values"]["hub"]["extraEnv"]
