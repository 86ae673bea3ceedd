"""`jhub:offline.buildRegistry`: the images the project builds (the portal, the notebook images) go to the
site's registry instead of onto every node. Online, the build step pushes what it built; with a mirror, a
push step pushes the bundled tarball; the hub's values (spawn form, default image, pre-puller), the portal
Deployment and the GPU agent name `<registry>/<name>:<tag>@<digest>`, and no node imports them. The
registered command itself is run against a real registry here (Debian's docker-registry)."""

from __future__ import annotations

import base64
import json
import os
import subprocess

import yaml

from tests.portal_deploy.deploy_support import manifest_of, unwrap
from tests.program.test_notebook_images import CPU, FAKES, GPU, NOTEBOOKS, ok
from tests.program.test_offline import THREE, airgapped, make_bundle
from tests.support import program as support
from tests.support.program import ROOT, is_secret_wrapper, plain_strings, run_program, stack_config
from tests.support.helm import of_kind, render
from tests.support.registry import SKOPEO, build_layout, registry

PORTAL = "localhost/jhub-portal:0.1.0"
REGISTRY = "harbor.local/jhub"
DIGESTS = {"notebook-cpu": "sha256:" + "c" * 64, "notebook-gpu": "sha256:" + "d" * 64, "portal": "sha256:" + "e" * 64}


def fake_steps(monkeypatch, step="build", digests=DIGESTS):
    for slug, digest in digests.items():
        monkeypatch.setitem(support.FAKE_STDOUT, f"{slug}-image-{step}", f"{'a' * 64} {digest}\n")


def online(**offline) -> dict:
    return stack_config(ROOT / "Pulumi.dev.yaml", {"jhub:offline": {"mode": "online", **offline}})


def three_online(**offline) -> dict:
    return stack_config(THREE, {
        "jhub:offline": {"mode": "online", **offline},
        "jhub:hub": {"storage": {"type": "shared-hostpath", "hostPath": "/srv/u"}, "images": NOTEBOOKS,
                     "prePullImages": True},
        "jhub:gpu": {"operator": True}})


def pinned(slug_ref: str, slug: str) -> str:
    return f"{REGISTRY}/{slug_ref.rsplit('/', 1)[-1]}@{DIGESTS[slug]}"


def hub_release(run):
    (release,) = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r.name == "jupyterhub"]
    return release


def hub_values(run) -> dict:
    values = unwrap(hub_release(run).inputs["values"])
    return json.loads(values) if isinstance(values, str) else values


def node_imports(run) -> list[str]:
    return [r.name for r in run.resources() if r.name.endswith(("-image", "-image-copy"))]


def containers(run, name) -> list[dict]:
    spec = manifest_of(run.named(name))["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def test_online_the_build_step_pushes_and_every_consumer_names_the_registry_image_by_digest(monkeypatch):
    fake_steps(monkeypatch)
    run = ok(run_program(three_online(buildRegistry=REGISTRY)))
    for slug, ref in (("notebook-cpu", CPU), ("notebook-gpu", GPU), ("portal", PORTAL)):
        create = run.named(f"{slug}-image-build").inputs["create"]
        assert f"scripts/bundle.py --dir offline-images --build {ref} --push {REGISTRY}" in create
    assert node_imports(run) == [], "nothing is imported on the nodes"

    values = hub_values(run)
    images = {i["name"]: i["image"] for i in values["custom"]["jhub"]["profiles"]["images"]}
    assert images == {"gpu": pinned(GPU, "notebook-gpu"), "cpu": pinned(CPU, "notebook-cpu"),
                      "sample": "quay.io/jupyterhub/k8s-singleuser-sample:4.4.0"}
    assert values["singleuser"]["image"] == {"name": f"{REGISTRY}/jhub-notebook-gpu",
                                             "tag": f"0.1.0@{DIGESTS['notebook-gpu']}"}
    assert values["prePuller"]["extraImages"]["jhub-cpu"] == {"name": f"{REGISTRY}/jhub-notebook-cpu",
                                                              "tag": f"0.1.0@{DIGESTS['notebook-cpu']}"}
    assert "localhost/" not in json.dumps(values)
    release = hub_release(run)
    assert run.named("notebook-gpu-image-build").urn in release.dependencies, "the release follows the push"

    for name in ("portal-deployment", "gpu-agent"):
        assert {c["image"] for c in containers(run, name) if c["name"] != "set-password"} == {pinned(PORTAL, "portal")}
    assert run.named("portal-image-build").urn in run.named("portal-deployment").dependencies


def test_the_real_chart_renders_the_pinned_images_for_the_pre_puller_and_the_spawner(monkeypatch):
    fake_steps(monkeypatch)
    values = hub_values(ok(run_program(three_online(buildRegistry=REGISTRY))))
    objects = render("jupyterhub-4.4.0.tgz", values, release="jupyterhub", namespace="jhub")
    (puller,) = [o for o in of_kind(objects, "DaemonSet") if o["metadata"]["name"] == "continuous-image-puller"]
    pulled = {c["image"] for c in puller["spec"]["template"]["spec"]["initContainers"]}
    assert {pinned(CPU, "notebook-cpu"), pinned(GPU, "notebook-gpu")} <= pulled, pulled  # name:tag@digest
    assert not [i for i in pulled if i.startswith("localhost/")]
    (config,) = [o for o in of_kind(objects, "Secret") if o["metadata"]["name"] == "hub"]
    hub_config = yaml.safe_load(base64.b64decode(config["data"]["values.yaml"]))
    image = hub_config["singleuser"]["image"]
    assert f"{image['name']}:{image['tag']}" == pinned(GPU, "notebook-gpu")


def whole_numbers(value):
    """Registered inputs come back through protobuf's Struct, where every number is a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def test_the_hubs_own_config_check_and_spawn_form_take_the_pinned_images(monkeypatch):
    """custom.jhub through the hub's own validation (hub/jhub_config.py) into the spawn form's image choice
    (hub/jhub_profiles.py): KubeSpawner is told to run the registry image by digest."""
    import importlib
    import sys

    fake_steps(monkeypatch)
    values = hub_values(ok(run_program(three_online(buildRegistry=REGISTRY))))
    sys.path.insert(0, str(ROOT / "hub"))
    try:
        cleaned = importlib.import_module("jhub_config").validate(whole_numbers(values["custom"]["jhub"]))
        option = importlib.import_module("jhub_profiles")._image_option(cleaned["profiles"]["images"])
    finally:
        sys.path.remove(str(ROOT / "hub"))
    assert option["choices"]["gpu"]["kubespawner_override"] == {"image": pinned(GPU, "notebook-gpu")}
    assert option["choices"]["gpu"]["default"] is True
    assert option["choices"]["cpu"]["kubespawner_override"] == {"image": pinned(CPU, "notebook-cpu")}


def test_the_registry_changes_nothing_without_the_key_and_gives_byte_identical_inputs(monkeypatch):
    fake_steps(monkeypatch)
    first, again = (ok(run_program(three_online(buildRegistry=REGISTRY))) for _ in range(2))
    inputs = [{r.urn: json.dumps(r.inputs, sort_keys=True) for r in run.resources()} for run in (first, again)]
    assert inputs[0] == inputs[1]
    plain = ok(run_program(three_online()))
    assert "--push" not in plain.named("portal-image-build").inputs["create"]
    assert plain.named("portal-image-build").inputs.get("environment") is None
    assert "gpu02-notebook-cpu-image" in node_imports(plain), "without the key the nodes import, as before"
    assert {c["image"] for c in containers(plain, "portal-deployment")} == {PORTAL}
    assert hub_values(plain)["singleuser"]["image"] == {"name": "localhost/jhub-notebook-gpu", "tag": "0.1.0"}


def test_the_push_login_and_ca_reach_the_step_and_the_password_stays_secret(monkeypatch, tmp_path):
    fake_steps(monkeypatch)
    ca = tmp_path / "site-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    config = three_online(buildRegistry=REGISTRY, buildRegistryUsername="robot$jhub",
                          buildRegistryPassword="push-s3cret-value", registryCaFile=str(ca))
    run = ok(run_program(config, secret_keys=("jhub:offline",)))
    step = run.named("notebook-cpu-image-build")
    env = step.inputs["environment"]
    assert unwrap(env) == {"JHUB_PUSH_USERNAME": "robot$jhub", "JHUB_PUSH_PASSWORD": "push-s3cret-value",
                           "JHUB_REGISTRY_CA_FILE": str(ca)}
    assert is_secret_wrapper(env) or is_secret_wrapper(env["JHUB_PUSH_PASSWORD"])
    for reg in run.resources():
        assert not [p for p, s in plain_strings(reg.inputs) if "push-s3cret-value" in s], reg.name
    # the same login pulls: a dockerconfigjson Secret that every pod running a pushed image names
    pull = run.named("registry-pull-secret")
    assert is_secret_wrapper(pull.inputs["stringData"]) or is_secret_wrapper(
        pull.inputs["stringData"][".dockerconfigjson"])
    secret = manifest_of(pull)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(secret["stringData"][".dockerconfigjson"])["auths"]
    assert base64.b64decode(auths["harbor.local"]["auth"]).decode() == "robot$jhub:push-s3cret-value"
    (name,) = hub_values(run)["imagePullSecrets"]
    assert name.startswith("registry-pull-secret-"), "Pulumi's name for it (a new login: a new name)"
    for workload in ("portal-deployment", "gpu-agent"):
        assert manifest_of(run.named(workload))["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": name}]
    assert pull.urn in hub_release(run).dependencies
    objects = render("jupyterhub-4.4.0.tgz", hub_values(run), release="jupyterhub", namespace="jhub")
    (puller,) = [o for o in of_kind(objects, "DaemonSet") if o["metadata"]["name"] == "continuous-image-puller"]
    assert {"name": name} in puller["spec"]["template"]["spec"]["imagePullSecrets"]
    # the digest is no secret: the values and the Deployment stay readable (as without a login)
    baseline = ok(run_program(three_online()))
    assert is_secret_wrapper(hub_release(run).inputs["values"]) == \
        is_secret_wrapper(hub_release(baseline).inputs["values"])
    assert not is_secret_wrapper(run.named("portal-deployment").inputs["spec"])
    # the nodes trust the site CA for their pulls from the build registry (hosts/registry.sh)
    for node in ("gpu01", "gpu02", "gpu03"):
        trust = run.named(f"{node}-registry").inputs["create"]
        assert "JHUB_BUILD_REGISTRY=harbor.local " in trust and "MIIB" in trust
        assert "JHUB_REGISTRY_UPSTREAMS= " in trust or "JHUB_REGISTRY_UPSTREAMS='' " in trust
    anonymous = ok(run_program(three_online(buildRegistry=REGISTRY)))
    assert not [r for r in anonymous.resources() if r.name.endswith("-registry")], "without a CA no registry step"
    assert "registry-pull-secret" not in {r.name for r in anonymous.resources()}
    assert "imagePullSecrets" not in hub_values(anonymous)
    assert "imagePullSecrets" not in manifest_of(anonymous.named("portal-deployment"))["spec"]["template"]["spec"]


def test_with_a_mirror_the_bundled_tarball_is_pushed_and_pinned_at_the_locks_digest(tmp_path, monkeypatch):
    images_dir, charts_dir = make_bundle(tmp_path)
    lock_path = images_dir / "images.lock"
    lock = yaml.safe_load(lock_path.read_text())
    for entry in lock["images"]:
        entry["digest"] = "sha256:" + "f" * 64
    lock_path.write_text(yaml.safe_dump(lock, sort_keys=False))
    fake_steps(monkeypatch, "push")
    config = airgapped(images_dir, charts_dir, registryMirror="https://harbor.local", buildRegistry=REGISTRY)
    config["jhub:hub"] = json.dumps({**json.loads(config["jhub:hub"]), "images": NOTEBOOKS})
    run = ok(run_program(config))
    names = {r.name for r in run.resources()}
    assert not {"notebook-gpu-image-build", "portal-image-build"} & names, "air-gapped: nothing is built"
    sha = next(e["sha256"] for e in lock["images"] if e["ref"] == GPU)
    step = run.named("notebook-gpu-image-push")
    assert f"--image {GPU} --push {REGISTRY}" in step.inputs["create"]
    assert step.inputs["triggers"] == [sha, f"{REGISTRY}/jhub-notebook-gpu:0.1.0"]
    assert node_imports(run) == []
    assert hub_values(run)["custom"]["jhub"]["profiles"]["images"][0]["image"] == pinned(GPU, "notebook-gpu")
    assert {c["image"] for c in containers(run, "portal-deployment")} == {pinned(PORTAL, "portal")}


def test_a_bundled_image_without_a_digest_is_named(tmp_path):
    images_dir, charts_dir = make_bundle(tmp_path)  # sha256s, no digests
    run = run_program(airgapped(images_dir, charts_dir, registryMirror="https://harbor.local",
                                buildRegistry=REGISTRY))
    assert run.error is not None and f"{PORTAL} is not bundled yet" in str(run.error)


def test_the_registered_step_pushes_to_a_real_registry_and_the_program_pins_what_it_serves(tmp_path, monkeypatch):
    """The build step's own command, with a stand-in buildah and a real registry: it builds, pushes, and
    prints the digest; fed back as the step's output, the values pin exactly what the registry serves."""
    fake_steps(monkeypatch)  # the portal's; the notebook image's is run for real below
    with registry(tmp_path) as running:
        target = f"{running.host}/jhub"
        run = ok(run_program(online(buildRegistry=target)))
        create = run.named("notebook-cpu-image-build").inputs["create"]
        project = tmp_path / "project"
        (project / "offline-images").mkdir(parents=True)
        (project / "scripts").symlink_to(ROOT / "scripts")
        (project / "offline-images" / "images.lock").write_text(
            (ROOT / "offline-images" / "images.lock").read_text())
        layout = build_layout(tmp_path / "layout", tag="0.1.0")
        env = dict(os.environ, FAKE_BUILDAH_LAYOUT=str(layout.path), FAKE_BUILDAH_CALLS=str(tmp_path / "calls"),
                   JHUB_INSECURE_REGISTRIES=running.host, HOME=str(tmp_path / "home"),
                   PATH=f"{FAKES}{os.pathsep}{ROOT / '.venv' / 'bin'}{os.pathsep}/usr/bin:/bin")
        done = subprocess.run(["/bin/sh", "-c", create], cwd=project, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        sha, digest = done.stdout.split()
        assert digest == layout.manifests["amd64"]["digest"]

        monkeypatch.setitem(support.FAKE_STDOUT, "notebook-cpu-image-build", done.stdout)
        values = hub_values(ok(run_program(online(buildRegistry=target))))
        ref = values["custom"]["jhub"]["profiles"]["images"][0]["image"]
        assert ref == f"{target}/jhub-notebook-cpu:0.1.0@{digest}"
        # the pods' `name:tag@digest` pulls by the digest (skopeo takes one or the other): both serve it
        name_tag, _, pin = ref.partition("@")
        for one in (name_tag, f"{name_tag.rsplit(':', 1)[0]}@{pin}"):
            inspected = subprocess.run([SKOPEO, "inspect", "--tls-verify=false", f"docker://{one}"],
                                       capture_output=True, text=True, timeout=60)
            assert inspected.returncode == 0, inspected.stderr
            assert json.loads(inspected.stdout)["Digest"] == digest

        # a registry that refuses: the step fails, naming the image and where it went
        env["JHUB_INSECURE_REGISTRIES"] = ""
        failed = subprocess.run(["/bin/sh", "-c", create], cwd=project, env=env, capture_output=True, text=True,
                                timeout=120)
        assert failed.returncode != 0 and failed.stdout == ""
        assert f"push of {CPU} to {target}/jhub-notebook-cpu:0.1.0" in failed.stderr
