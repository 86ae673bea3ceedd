"""`jhub diag`: a healthy cluster is all well; each kind of problem is named with its fix; exit codes."""

from __future__ import annotations

from tests.diag.cluster import needed_refs, node, pod, tls_secret


def problems(data: dict) -> list[dict]:
    return [p for s in data["sections"] for p in s["problems"]]


def test_a_healthy_cluster_is_all_well_in_one_screen(diag):
    code, out, err = diag()
    assert code == 0, out
    assert out.strip().endswith("all well")
    assert "gpu02: Ready, MicroK8s v1.32.3, GPUs 4 advertised (4 schedulable), 4 in facts" in out
    assert "hub: /hub/health answers 200" in out
    assert "proxy: 1 of 1 running user servers routed" in out
    assert "portal: /readyz answers 200" in out
    assert "ClusterPolicy cluster-policy: ready" in out
    assert f"all {len(needed_refs())} needed images present on gpu01, gpu02, gpu03" in out
    assert "jhub/hub-tls-a1b2c3: CN=hub.lab.example, expires 2027-03-01 (90 days)" in out
    assert len(out.splitlines()) <= 40, "one screen"


def test_only_get_requests_reach_the_cluster(diag, api):
    diag()
    assert api.requests and {r["method"] for r in api.requests} == {"GET"}


def test_json_carries_the_same_sections(diag):
    code, data = diag.json()
    assert code == 0 and data["ok"] is True
    names = [s["name"] for s in data["sections"]]
    assert names == ["nodes", "pods", "hub", "portal", "gpu operator", "images", "certificates"]
    nodes = next(s for s in data["sections"] if s["name"] == "nodes")
    assert nodes["data"]["gpu03"] == {"ready": True, "kubeletVersion": "v1.32.3", "microk8sVersion": "v1.32.3",
                                      "gpusAdvertised": 4, "gpuUnits": 4, "gpusInFacts": 4, "pressure": []}
    assert all(set(s) == {"name", "ok", "lines", "problems", "data"} for s in data["sections"])


def test_a_node_not_ready_and_under_pressure(diag, api):
    api.add(node("gpu02", 4, ready=False, pressure=("DiskPressure",)))
    code, out, _ = diag()
    assert code == 1
    assert "!! node gpu02 is not Ready: container runtime is down" in out
    assert "fix: on gpu02: sudo microk8s inspect" in out
    assert "!! node gpu02 reports DiskPressure" in out and "df -h /var/snap/microk8s/common" in out


def test_gpus_in_the_facts_not_advertised(diag, api):
    api.add(node("gpu03", 2))  # the facts list 4
    code, data = diag.json()
    assert code == 1
    (problem,) = problems(data)
    assert problem["message"] == "node gpu03 advertises 2 of the 4 GPUs its facts list"
    assert "jhub:gpu.operator: true" in problem["fix"]


def test_a_node_of_the_config_missing_and_versions_differ(diag, api):
    api.publish("nodes", "DELETED", api.get("nodes", "gpu03"))
    api.add(node("gpu02", 4, kubelet="v1.31.9"))
    code, out, _ = diag()
    assert code == 1
    assert "!! node gpu03 of jhub:nodes is not in the cluster" in out
    assert "!! nodes run different Kubernetes versions: gpu01 v1.32.3, gpu02 v1.31.9" in out
    assert "fix: jhub:microk8s.channel" in out


def test_pods_not_running_with_reason_and_last_events(diag, api):
    api.add(pod("jupyter-bob", node_name="gpu03", phase="Pending", waiting="ImagePullBackOff",
                labels={"component": "singleuser-server"}))
    for i in range(5):
        api.add({"kind": "Event", "apiVersion": "v1",
                 "metadata": {"name": f"jupyter-bob.{i}", "namespace": "jhub"},
                 "involvedObject": {"kind": "Pod", "name": "jupyter-bob", "namespace": "jhub"},
                 "reason": "Failed" if i % 2 else "BackOff", "message": f"event number {i}",
                 "lastTimestamp": f"2026-12-01T07:0{i}:00Z"})
    api.add({"kind": "Event", "apiVersion": "v1", "metadata": {"name": "other.1", "namespace": "jhub"},
             "involvedObject": {"kind": "Pod", "name": "jupyter-alice"}, "reason": "Pulled", "message": "x",
             "lastTimestamp": "2026-12-01T07:09:00Z"})
    code, out, _ = diag()
    assert code == 1
    assert "!! pod jhub/jupyter-bob is Pending: ImagePullBackOff" in out
    assert [line.strip() for line in out.splitlines() if "event:" in line] == [
        "event: BackOff: event number 2", "event: Failed: event number 3", "event: BackOff: event number 4"]
    assert "fix: an image is missing on its node: python scripts/bundle.py --check --stack airgapped" in out


def test_pods_of_users_namespaces_and_crash_loops(diag, api):
    api.add({"kind": "Namespace", "apiVersion": "v1",
             "metadata": {"name": "jhub-u-carol", "labels": {"jhub.io/user-namespace": "true"}}})
    api.add(pod("launcher-0", "jhub-u-carol", waiting="CrashLoopBackOff"))
    api.add(pod("launcher-0", "other-team", waiting="CrashLoopBackOff"))  # not jhub's
    code, data = diag.json()
    assert code == 1
    assert [(p["message"].splitlines()[0], p["fix"]) for p in problems(data)] == [
        ("pod jhub-u-carol/launcher-0 is Running: CrashLoopBackOff",
         "kubectl -n jhub-u-carol logs launcher-0 --previous")]


def test_the_hub_unhealthy(diag, cluster):
    cluster.hub_health = 503
    code, out, _ = diag()
    assert code == 1
    assert "!! hub: /hub/health answers 503" in out
    assert "fix: kubectl -n jhub logs deploy/hub" in out
    assert "!! proxy: /hub/health through proxy-public answers 503" in out


def test_a_running_user_server_the_proxy_does_not_route(diag, cluster):
    cluster.routed = set()
    code, out, _ = diag()
    assert code == 1
    assert "!! proxy: no route to alice's running server (pod jupyter-alice; /user/alice/api answers 404)" in out
    assert "fix: kubectl -n jhub rollout restart deploy/hub" in out


def test_the_portal_not_ready(diag, cluster):
    cluster.readyz = (503, {"status": "unavailable", "database": "OperationalError"})
    code, out, _ = diag()
    assert code == 1
    assert '!! portal: /readyz answers 503: {"status": "unavailable", "database": "OperationalError"}' in out
    assert "fix: kubectl -n jhub logs deploy/jhub-portal" in out


def test_the_portal_without_endpoints(diag, api):
    api.proxies.pop(("jhub", "jhub-portal", "29781"))
    code, out, _ = diag()
    assert code == 1 and "!! portal: /readyz answers 503" in out and "no endpoints available" in out


def test_the_gpu_operator_not_ready_and_a_validator_failing(diag, api):
    policy = api.get("clusterpolicies", "cluster-policy")
    api.publish("clusterpolicies", "MODIFIED", {**policy, "status": {"state": "notReady"}})
    api.add(pod("nvidia-operator-validator-gpu03", "gpu-operator", node_name="gpu03", phase="Pending",
                waiting="Init:CrashLoopBackOff", labels={"app": "nvidia-operator-validator"}))
    code, out, _ = diag()
    assert code == 1
    assert "!! GPU Operator: ClusterPolicy state is notReady" in out
    assert "!! GPU Operator: validator nvidia-operator-validator-gpu03 on gpu03 is Init:CrashLoopBackOff" in out
    assert "fix: kubectl -n gpu-operator logs nvidia-operator-validator-gpu03 --all-containers" in out


def test_the_gpu_operator_missing_while_the_facts_list_gpus(diag, api):
    api.publish("clusterpolicies", "DELETED", api.get("clusterpolicies", "cluster-policy"))
    code, data = diag.json()
    assert code == 1
    assert [(p["message"], p["fix"]) for p in problems(data)] == [
        ("GPU Operator: not installed, and the facts list 10 GPUs", "jhub:gpu.operator: true, then pulumi up")]


def test_images_a_node_lacks(diag, api):
    gpu02 = api.get("nodes", "gpu02")
    # the stack's spawn-form images: jhub's own notebook images, built into the bundle
    lost = ("localhost/jhub-notebook-cpu:0.1.0", "localhost/jhub-notebook-gpu:0.1.0")
    assert set(lost) <= set(needed_refs())
    kept = [i for i in gpu02["status"]["images"] if i["names"][0] not in lost]
    api.add({**gpu02, "status": {**gpu02["status"], "images": kept}})
    code, out, _ = diag()
    assert code == 1
    assert f"!! node gpu02 lacks 2 image(s): {lost[0]}, {lost[1]}" in out
    assert "fix: python scripts/bundle.py --check --stack airgapped; then re-run the node's import" in out
    assert "gpu02-images" in out


def test_an_image_known_only_by_digest_is_present(diag, api):
    gpu01 = api.get("nodes", "gpu01")
    by_digest = [{"names": [i["names"][1]], "sizeBytes": 1} for i in gpu01["status"]["images"]]
    api.add({**gpu01, "status": {**gpu01["status"], "images": by_digest}})
    # the lock records no digests yet: a repository@digest name alone proves nothing
    code, out, _ = diag()
    assert code == 1 and f"!! node gpu01 lacks {len(needed_refs())} image(s)" in out


def test_a_node_listing_the_kubelets_cap_of_images_is_not_blamed(diag, api):
    gpu01 = api.get("nodes", "gpu01")
    many = [{"names": [f"docker.io/library/other:{i}"], "sizeBytes": 1} for i in range(50)]
    api.add({**gpu01, "status": {**gpu01["status"], "images": many}})
    code, out, _ = diag()
    assert code == 0, out
    assert f"gpu01: {len(needed_refs())} needed images not among the 50 the kubelet lists" in out


def test_certificates_near_expiry_and_expired(diag, api):
    api.add(tls_secret("hub-tls-a1b2c3", days=12))
    api.add(tls_secret("old-tls", days=-3))
    code, out, _ = diag()
    assert code == 1
    assert "!! certificate jhub/hub-tls-a1b2c3 (CN=hub.lab.example) expires in 12 days" in out
    assert "!! certificate jhub/old-tls (CN=hub.lab.example) has expired" in out
    assert "fix: pulumi config set --secret --path 'jhub:tls.certificate' < fullchain.pem" in out


def test_secrets_are_never_printed(diag, api):
    api.add(tls_secret("hub-tls-a1b2c3", days=12))
    secret = api.get("secrets", "hub-tls-a1b2c3", "jhub")
    for extra in ((), ("--json",)):
        code, out, err = diag(*extra)
        assert code == 1
        for text in (out, err):
            assert "diag-secret-token-1234" not in text
            assert secret["data"]["tls.key"][:40] not in text and "PRIVATE KEY" not in text
            assert "certificate-authority-data" not in text


def test_an_unreachable_api_server_is_exit_2(diag, api):
    api.close()
    code, out, err = diag()
    assert code == 2 and out == ""
    assert "jhub diag: cannot run: the API server at https://127.0.0.1:" in err
    assert "cannot be reached" in err


def test_a_refused_token_is_exit_2(diag, api):
    api.token = "another-token"
    code, out, err = diag()
    assert code == 2 and "answered 401 Unauthorized" in err
    assert "diag-secret-token-1234" not in err


def test_a_bad_kubeconfig_is_exit_2(diag, tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("not: a kubeconfig\n")
    code, out, err = diag("--kubeconfig", str(bad))
    assert code == 2 and "is not a kubeconfig" in err
    code, out, err = diag("--kubeconfig", str(tmp_path / "missing"))
    assert code == 2 and "cannot read the kubeconfig" in err


# -- from the stack's outputs (pulumi), as an admin runs it ---------------------------------------------
def run_with_pulumi(tmp_path, outputs: dict, *args: str, passphrase: str | None = "pass"):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    backend = tmp_path / "state"
    backend.mkdir(exist_ok=True)
    (backend / "jhub-fake-selected-stack").write_text("airgapped")
    store = tmp_path / "outputs.json"
    store.write_text(json.dumps({"outputs": outputs, "secrets": ["kubeconfig"]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env |= {"PATH": f"{root / 'tests' / 'program' / 'fakes'}:{env['PATH']}", "FAKE_PULUMI_OUTPUTS": str(store),
            "PULUMI_BACKEND_URL": f"file://{backend}", "FAKE_PULUMI_LOG": str(tmp_path / "pulumi.log")}
    if passphrase:
        env["PULUMI_CONFIG_PASSPHRASE"] = passphrase
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")  # where a copy of the kubeconfig would be left
    done = subprocess.run([sys.executable, str(root / "scripts" / "diag.py"), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    calls = [json.loads(line)["argv"] for line in (tmp_path / "pulumi.log").read_text().splitlines()]
    return done, calls


def test_the_kubeconfig_and_facts_come_from_the_stack_and_stay_secret(cluster, api, tmp_path):
    from tests.diag.cluster import facts

    # the real clock is used here: a certificate valid for a while from now keeps it all well
    api.add(tls_secret("hub-tls-a1b2c3", days=3650))
    done, calls = run_with_pulumi(tmp_path, {"kubeconfig": api.kubeconfig_text(), "nodes": facts()})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 in facts" in done.stdout and done.stdout.strip().endswith("all well")
    assert ["stack", "output", "kubeconfig", "--show-secrets", "--stack", "airgapped"] in calls
    assert ["stack", "output", "nodes", "--json", "--stack", "airgapped"] in calls
    assert "diag-secret-token-1234" not in done.stdout + done.stderr
    assert not list((tmp_path / "tmp").iterdir()), "no copy of the kubeconfig is left behind"


def test_a_stack_that_cannot_show_its_secrets_is_exit_2(cluster, api, tmp_path):
    done, _ = run_with_pulumi(tmp_path, {"kubeconfig": api.kubeconfig_text()}, passphrase=None)
    assert done.returncode == 2
    assert "cannot run: `pulumi stack output kubeconfig` failed: error: passphrase must be set" in done.stderr
    assert "diag-secret-token-1234" not in done.stdout + done.stderr


def test_the_readme_shows_every_section_and_exit_code(diag):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    part = readme[readme.index("### `jhub diag`"):]
    part = part[:part.index("\n## ")]
    _, data = diag.json()
    for section in data["sections"]:
        assert f"**{section['name']}:**" in part, section["name"]
    for code in ("**0** all well", "**1** problems found", "**2** could not run"):
        assert code in part
    assert "| `scripts/` | `up.sh`, `test.sh`, `bundle.py`, `diag.py`" in readme


def test_a_check_the_credentials_may_not_read_is_its_problem(diag, api):
    api.route("GET", "/api/v1/namespaces/jhub/secrets", lambda r: (403, {"kind": "Status", "code": 403,
                                                                       "reason": "Forbidden"}))
    code, data = diag.json()
    assert code == 1
    (section,) = [s for s in data["sections"] if not s["ok"]]
    assert section["name"] == "certificates"
    assert section["problems"][0]["message"] == "certificates: the API server answered 403 Forbidden"


def test_an_online_stack_has_no_images_to_compare(diag, api):
    gpu01 = api.get("nodes", "gpu01")
    api.add({**gpu01, "status": {**gpu01["status"], "images": []}})
    code, out, _ = diag("--stack", "dev")  # Pulumi.dev.yaml: online, nodes pull their images
    assert "images: nodes pull them (online mode or a registry mirror): nothing to compare" in out
    assert code == 0, out
