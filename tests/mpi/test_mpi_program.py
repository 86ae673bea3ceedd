"""The MPI Operator in the whole program under mocks: its manifest from the bundle (air-gapped) or its URL
(online), the RBAC of per-user namespaces, custom.jhub.mpi for the hub, and the preflight naming a missing
manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys

import kubernetes_validate
import pytest
import yaml

from components.bundle.locks import load_lock
from components.bundle.preflight import PreflightError
from components.jupyterhub.chart import HUB_SERVICE_ACCOUNT
from components.mpi import rbac
from components.mpi.manifest import MANIFEST_URL
from components.settings.image_refs import full_image
from tests.network.netconfigs import config
from tests.program.test_offline import airgapped, make_bundle
from tests.support.helm import SHARED_CHARTS
from tests.support.program import ROOT, assert_refused, plain_strings, run_program

CONFIG_FILE = "kubernetes:yaml/v2:ConfigFile"
MANIFEST = SHARED_CHARTS / "mpi-operator-v0.8.0.yaml"


def manifest_text() -> str:
    if not MANIFEST.is_file():
        pytest.skip(f"{MANIFEST} is absent (../shared/ is not beside this clone)")
    return MANIFEST.read_text()


def _as_helm_gives_it(value):
    """Pulumi sends numbers as float64 and drops nulls; helm's JSON then writes 1.0 as 1."""
    if isinstance(value, dict):
        return {k: _as_helm_gives_it(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_helm_gives_it(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def hub_values(run) -> dict:
    [release] = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.name == "jupyterhub"]
    return _as_helm_gives_it(release.inputs["values"])


def test_online_applies_the_upstream_manifest_and_registers_the_rbac():
    run = run_program(config(mpi={"enabled": True}))
    assert run.error is None, run.error
    [operator] = run.of_type(CONFIG_FILE)
    assert operator.inputs["file"] == MANIFEST_URL
    roles = {r.inputs["metadata"]["name"]: r for r in run.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")}
    assert roles["jhub-jhub-mpi-user"].inputs["rules"] == rbac.user_role("jhub")["rules"]
    assert roles["jhub-jhub-hub-mpi"].inputs["rules"] == rbac.hub_role("jhub", portal_enabled=True)["rules"]
    # the portal (on by default) registers the pod-stopper the hub may bind in users' namespaces
    assert [r["resourceNames"] for r in roles["jhub-jhub-hub-mpi"].inputs["rules"] if "bind" in r["verbs"]] == [
        ["jhub-jhub-mpi-user", "jhub-jhub-portal-pod-stopper"]]
    assert "jhub-jhub-portal-pod-stopper" in roles
    binding = run.named("mpi-hub-binding")
    assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": HUB_SERVICE_ACCOUNT, "namespace": "jhub"}]


def test_hub_gets_its_mpi_config_and_it_validates():
    run = run_program(config(mpi={"enabled": True, "namespacePrefix": "lab-", "tokenHours": 12,
                                  "quotaDefaults": {"cpu": 8, "memoryGiB": 32.5, "gpus": 1, "pods": None}}))
    values = hub_values(run)
    mpi = values["custom"]["jhub"]["mpi"]
    assert mpi == {"enabled": True, "namespacePrefix": "lab-", "namespaceLabel": "jhub.io/user-namespace",
                   "serviceAccount": "jhub-user",
                   "userClusterRole": "jhub-jhub-mpi-user", "quotaName": "jhub-user-quota",
                   "quotaDefaults": {"cpu": 8, "memoryGiB": 32.5, "gpus": 1}, "tokenSeconds": 43200,
                   # the portal's ClusterRole and ServiceAccount, as the portal component registers them
                   "portalPodStopper": {"clusterRole": "jhub-jhub-portal-pod-stopper", "namespace": "jhub",
                                        "serviceAccount": "jhub-portal"}}
    stopper_role = run.named("portal-pod-stopper").inputs["metadata"]["name"]
    [account] = [r for r in run.of_type("kubernetes:core/v1:ServiceAccount") if r.name == "portal-service-account"]
    assert (stopper_role, account.inputs["metadata"]["name"], account.inputs["metadata"]["namespace"]) == (
        mpi["portalPodStopper"]["clusterRole"], mpi["portalPodStopper"]["serviceAccount"],
        mpi["portalPodStopper"]["namespace"])
    sys.path.insert(0, str(ROOT / "hub"))
    from jhub_config import validate

    cleaned = validate(values["custom"]["jhub"])["mpi"]
    assert cleaned["tokenSeconds"] == 43200 and cleaned["quotaDefaults"]["pods"] is None  # null: no pod quota
    assert cleaned["portalPodStopper"] == mpi["portalPodStopper"]
    # kubectl in the notebook reaches MicroK8s's API server (Calico sees the node port after DNAT)
    assert values["singleuser"]["networkPolicy"]["egress"] == [{"ports": [{"port": 16443, "protocol": "TCP"}]}]


def test_without_the_portal_the_hub_binds_no_pod_stopper():
    run = run_program(config(mpi={"enabled": True}, portal={"enabled": False}))
    assert run.error is None, run.error
    assert "portalPodStopper" not in hub_values(run)["custom"]["jhub"]["mpi"]
    roles = {r.inputs["metadata"]["name"]: r
             for r in run.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")}
    assert [r["resourceNames"] for r in roles["jhub-jhub-hub-mpi"].inputs["rules"] if "bind" in r["verbs"]] == [
        ["jhub-jhub-mpi-user"]]


def test_without_mpi_the_hub_values_carry_no_mpi():
    values = hub_values(run_program(config()))
    assert "mpi" not in values["custom"]["jhub"]
    assert "egress" not in values["singleuser"]["networkPolicy"]


def _bundle_with_manifest(tmp_path, with_file: bool):
    images_dir, charts_dir = make_bundle(tmp_path)
    charts = yaml.safe_load((charts_dir / "charts.lock").read_text())
    [entry] = charts["manifests"]
    if with_file:
        text = manifest_text()  # a copy in the test's own bundle folder, never in the repository
        (charts_dir / entry["file"]).write_text(text)
        entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    else:
        entry["sha256"] = "0" * 64
    (charts_dir / "charts.lock").write_text(yaml.safe_dump(charts, sort_keys=False))
    return images_dir, charts_dir


def test_air_gapped_applies_the_bundled_manifest_and_chart(tmp_path):
    images_dir, charts_dir = _bundle_with_manifest(tmp_path, with_file=True)
    run = run_program(airgapped(images_dir, charts_dir) | {"jhub:mpi": json.dumps({"enabled": True}),
                                                           "jhub:infiniband": json.dumps({"enabled": True})},
                      facts={"gpu01": {"infiniband": [{"device": "mlx5_0", "port": 1, "linkLayer": "InfiniBand",
                                                       "netdevs": ["ib0"]}]}})
    assert run.error is None, run.error
    [operator] = run.of_type(CONFIG_FILE)
    assert operator.inputs["file"] == f"{charts_dir}/mpi-operator-v0.8.0.yaml"
    [release] = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.name == "network-operator"]
    assert release.inputs["chart"] == f"{charts_dir}/network-operator-26.4.1.tgz"
    assert "repositoryOpts" not in release.inputs


def test_preflight_names_the_missing_manifest(tmp_path):
    images_dir, charts_dir = _bundle_with_manifest(tmp_path, with_file=False)
    run = run_program(airgapped(images_dir, charts_dir) | {"jhub:mpi": json.dumps({"enabled": True})})
    assert isinstance(run.error, PreflightError), run.error
    assert any(p.startswith("manifest mpi-operator v0.8.0:") and "mpi-operator-v0.8.0.yaml is missing" in p
               for p in run.error.problems), run.error.problems
    assert run.resources() == []


def test_manifest_lock_entry_and_the_image_it_names():
    lock = load_lock(ROOT / "offline-images", ROOT / "charts")
    [entry] = lock.manifests
    assert (entry.name, entry.version, entry.features) == ("mpi-operator", "v0.8.0", ("mpi-operator",))
    images = sorted({d["spec"]["template"]["spec"]["containers"][0]["image"]
                     for d in yaml.safe_load_all(manifest_text()) if d and d["kind"] == "Deployment"})
    assert images == ["mpioperator/mpi-operator:0.8.0"]
    locked = {f.name for f in lock.images if "mpi-operator" in f.features}
    assert locked == {full_image(images[0])}


@pytest.mark.parametrize("manifest", rbac.manifests("jhub") + rbac.manifests("jhub", portal_enabled=True)[1:2],
                         ids=lambda m: m["metadata"]["name"])
def test_rbac_manifests_are_valid(manifest):
    kubernetes_validate.validate(manifest, "1.32", strict=True)


def test_hub_may_bind_only_the_user_role_and_mint_tokens_only_for_the_user_account():
    rules = rbac.hub_role("jhub")["rules"]
    assert [r for r in rules if "bind" in r["verbs"]] == [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
         "resourceNames": ["jhub-jhub-mpi-user"]}]
    # with the portal: also exactly its pod-stopper, and nothing else changes
    with_portal = rbac.hub_role("jhub", portal_enabled=True)["rules"]
    assert [r for r in with_portal if "bind" in r["verbs"]] == [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
         "resourceNames": ["jhub-jhub-mpi-user", "jhub-jhub-portal-pod-stopper"]}]
    assert [r for r in with_portal if "bind" not in r["verbs"]] == [r for r in rules if "bind" not in r["verbs"]]
    token = [r for r in rules if r["resources"] == ["serviceaccounts/token"]]
    assert token == [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
                      "resourceNames": ["jhub-user"]}]
    assert not any(v in r["verbs"] for r in rules for v in ("escalate", "*", "delete", "list"))
    user = rbac.user_role("jhub")["rules"]
    assert sorted({res for r in user for res in r["resources"]}) == ["mpijobs", "mpijobs/status", "pods", "pods/log"]


CASES = [
    ("quota-cpu-negative", {"enabled": True, "quotaDefaults": {"cpu": -1}}, "jhub:mpi.quotaDefaults.cpu:",
     "at least 0"),
    ("quota-gpus-negative", {"enabled": True, "quotaDefaults": {"gpus": -2}}, "jhub:mpi.quotaDefaults.gpus:",
     "at least 0"),
    ("quota-memory-text", {"enabled": True, "quotaDefaults": {"memoryGiB": "64Gi"}},
     "jhub:mpi.quotaDefaults.memoryGiB:", "must be a number"),
    ("bad-prefix", {"enabled": True, "namespacePrefix": "Jhub_"}, "jhub:mpi.namespacePrefix:", 'ending in "-"'),
    ("token-hours-zero", {"enabled": True, "tokenHours": 0}, "jhub:mpi.tokenHours:", "at least 1"),
    ("unknown-key", {"enabled": True, "namespace": "x"}, "jhub:mpi.namespace:", "unknown key"),
]


@pytest.mark.parametrize("mpi,where,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_mpi_config_names_the_key_and_registers_nothing(mpi, where, words):
    assert_refused(config(mpi=mpi), (), where, words)


def test_mpi_without_rbac_addon_is_refused():
    values = config(mpi={"enabled": True}) | {"jhub:microk8s": json.dumps({"addons": ["dns", "hostpath-storage"]})}
    assert_refused(values, (), "jhub:mpi.enabled:", "needs the rbac addon")


# -- a build-registry login: the pull Secret reaches users' namespaces (hub/jhub_mpi.py) -----------------------

PASSWORD = "pull-s3cret-value"


def registry_config(**offline) -> dict:
    return config(mpi={"enabled": True}, offline={"mode": "online", "buildRegistry": "harbor.local/jhub", **offline})


def _run_with_registry(monkeypatch, **offline):
    from tests.program.test_build_registry import fake_steps

    fake_steps(monkeypatch)
    run = run_program(registry_config(**offline), secret_keys=("jhub:offline",))
    assert run.error is None, run.error
    return run


GUARD_NAMES = ("mpi-hub-pull-secret-policy", "mpi-hub-pull-secret-binding")


def test_with_a_registry_login_the_hub_copies_the_pull_secret_under_a_guard(monkeypatch):
    from components.mpi import admission

    run = _run_with_registry(monkeypatch, buildRegistryUsername="robot", buildRegistryPassword=PASSWORD)
    policy, binding = (run.named(n) for n in GUARD_NAMES)
    assert policy.inputs["spec"] == admission.pull_secret_policy("jhub")["spec"]
    assert binding.inputs["spec"] == {"policyName": "jhub-jhub-hub-pull-secret", "validationActions": ["Deny"]}
    hub_role = run.named("mpi-hub-role")
    assert hub_role.inputs["rules"] == rbac.hub_role("jhub", portal_enabled=True, pull_secret=True)["rules"]
    assert binding.urn in hub_role.dependencies  # the right never exists without its guard
    # the hub's config names the Secret (Pulumi's name for it, as the pods' imagePullSecrets) and never its content
    values = hub_values(run)
    (pull,) = values["imagePullSecrets"]
    mpi = values["custom"]["jhub"]["mpi"]
    assert mpi["pullSecret"] == {"source": pull, "name": rbac.PULL_SECRET_NAME}
    sys.path.insert(0, str(ROOT / "hub"))
    from jhub_config import validate

    assert validate(values["custom"]["jhub"])["mpi"]["pullSecret"] == mpi["pullSecret"]
    for reg in run.resources():  # the password stays in the secret Secret input, nowhere else
        leaked = [p for p, s in plain_strings(reg.inputs) if PASSWORD in s or _b64_login(PASSWORD) in s]
        assert not leaked, (reg.name, leaked)
    assert PASSWORD not in json.dumps(run.outputs, default=str)


def _b64_login(password):
    import base64

    return base64.b64encode(f"robot:{password}".encode()).decode()


def test_an_anonymous_registry_gives_the_hub_no_secret_rights_and_no_guard(monkeypatch):
    run = _run_with_registry(monkeypatch)
    names = {r.name for r in run.resources()}
    assert not names & set(GUARD_NAMES)
    assert run.named("mpi-hub-role").inputs["rules"] == rbac.hub_role("jhub", portal_enabled=True)["rules"]
    assert "pullSecret" not in hub_values(run)["custom"]["jhub"]["mpi"]


def test_without_the_build_registry_nothing_changes():
    run = run_program(config(mpi={"enabled": True}))
    assert not {r.name for r in run.resources()} & set(GUARD_NAMES)
    assert not [r for r in run.named("mpi-hub-role").inputs["rules"] if "secrets" in r["resources"]]


def test_the_same_login_gives_byte_identical_mpi_inputs(monkeypatch):
    runs = [_run_with_registry(monkeypatch, buildRegistryUsername="robot", buildRegistryPassword=PASSWORD)
            for _ in range(2)]
    picked = [{r.name: json.dumps(r.inputs, sort_keys=True) for r in run.resources()
               if r.name.startswith("mpi-")} for run in runs]
    assert picked[0] == picked[1] and set(GUARD_NAMES) <= set(picked[0])
