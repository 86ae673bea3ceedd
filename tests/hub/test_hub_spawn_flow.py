"""The form and the spawn through KubeSpawner's own code, against recorded Kubernetes API JSON."""

import pytest
from kubespawner.slugs import safe_slug

from jhub_profiles import CPU_SLUG, gpu_profile_slug
from jhub_spawn_check import SpawnRefused
from hubtest_cluster import A100, L40S, pod, standard_cluster
from hubtest_configs import SelectOptions, configured, jhub_cfg, new_spawner, spawn_until_pod

A100_SLUG, L40S_SLUG = gpu_profile_slug(A100), gpu_profile_slug(L40S)


def container(pod_json):
    return pod_json["spec"]["containers"][0]


@pytest.mark.asyncio
async def test_form_rendered_by_kubespawner_lists_only_fitting_choices(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = standard_cluster()
    spawner = new_spawner(configured(jhub_cfg(), kube_api.url), "Alice.Smith")
    form = SelectOptions(await spawner.get_options_form())
    assert form.radios == [A100_SLUG, L40S_SLUG, CPU_SLUG]
    assert form.selects[f"profile-option-{A100_SLUG}--gpus"] == ["1", "2"]
    assert form.selects[f"profile-option-{L40S_SLUG}--gpus"] == ["1", "2", "3", "4"]
    assert form.selects[f"profile-option-{CPU_SLUG}--size"] == ["2cpu-8gib", "8cpu-32gib"]
    assert form.selects[f"profile-option-{L40S_SLUG}--node"] == ["any", "gpu-l1"]
    pods_call = [r for r in kube_api.requests if r["path"] == "/api/v1/pods"][-1]
    assert "status.phase%21%3DSucceeded" in pods_call["query"] or "status.phase!%3DSucceeded" in pods_call["query"]


@pytest.mark.asyncio
async def test_new_node_shows_up_without_a_new_hub(kube_api):
    from hubtest_cluster import node

    kube_api.cluster["nodes"] = [node("cpu-1", cpu="16", memory="64Gi")]
    spawner = new_spawner(configured(jhub_cfg(), kube_api.url), "bob")
    assert SelectOptions(await spawner.get_options_form()).radios == [CPU_SLUG]
    kube_api.cluster["nodes"].append(node("gpu-new", cpu="64", memory="256Gi", gpus=4, model=L40S))
    assert SelectOptions(await spawner.get_options_form()).radios == [L40S_SLUG, CPU_SLUG]


@pytest.mark.asyncio
async def test_chosen_combination_is_what_the_pod_requests(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = standard_cluster()
    spawner = new_spawner(configured(jhub_cfg(), kube_api.url), "Alice.Smith")
    got = await spawn_until_pod(spawner, {"profile": L40S_SLUG, "gpus": "2", "image": "minimal", "node": "gpu-l1"})
    c = container(got)
    assert c["image"] == "quay.io/jupyter/minimal-notebook:2024-10-07"
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert c["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert c["resources"]["limits"]["cpu"] == c["resources"]["requests"]["cpu"] == 31.0
    assert got["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": L40S, "kubernetes.io/hostname": "gpu-l1"}


@pytest.mark.asyncio
async def test_combination_that_does_not_fit_is_refused_with_the_reason(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = standard_cluster()
    spawner = new_spawner(configured(jhub_cfg(), kube_api.url), "carol")
    # 4 A100s exist on gpu-a1 (8 allocatable) but only 2 are free now: the form hid it, the API can still ask.
    with pytest.raises(SpawnRefused) as refused:
        await spawn_until_pod(spawner, {"profile": A100_SLUG, "gpus": "4"})
    message = refused.value.jupyterhub_message
    assert message.startswith("No node can take this server right now: it asks for 4 GPUs, 63 CPU cores, 496 GiB")
    assert "gpu-a1 has 2 GPUs" in message and "gpu-a2 is cordoned" in message
    assert f"nvidia.com/gpu.product={A100}" in message


@pytest.mark.asyncio
async def test_capacity_taken_between_form_and_spawn_is_refused(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = standard_cluster()
    spawner = new_spawner(configured(jhub_cfg(), kube_api.url), "dave")
    form = SelectOptions(await spawner.get_options_form())
    assert "4" in form.selects[f"profile-option-{L40S_SLUG}--gpus"]
    kube_api.cluster["pods"].append(pod("sneaky", "gpu-l1", cpu="4", memory="8Gi", gpus=3))
    with pytest.raises(SpawnRefused, match="gpu-l1 has 1 GPUs"):
        await spawn_until_pod(spawner, {"profile": L40S_SLUG, "gpus": "4", "node": "gpu-l1"})


@pytest.mark.asyncio
async def test_choice_that_never_existed_is_refused_before_kubespawner_sees_it(kube_api):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = standard_cluster()
    spawner = new_spawner(configured(jhub_cfg(), kube_api.url), "erin")
    with pytest.raises(SpawnRefused, match="GPUs '99' is not offered for NVIDIA L40S, whole GPU; offered: 1, 2, 3, 4"):
        await spawn_until_pod(spawner, {"profile": L40S_SLUG, "gpus": "99"})
    with pytest.raises(SpawnRefused, match="'gpu-h100' is not offered now"):
        await spawn_until_pod(spawner, {"profile": "gpu-h100"})
    with pytest.raises(SpawnRefused, match="free-form values are not accepted"):
        await spawn_until_pod(spawner, {"profile": CPU_SLUG, "image--unlisted-choice": "evil/miner"})


@pytest.mark.asyncio
async def test_empty_cluster_refuses_with_explanation(kube_api):
    spawner = new_spawner(configured(jhub_cfg(), kube_api.url), "frank")
    with pytest.raises(SpawnRefused, match="the cluster has no nodes"):
        await spawn_until_pod(spawner, {})


@pytest.mark.parametrize("username,server", [("Alice.Smith", ""), ("Alice.Smith", "Exp.1"), ("bob", "")])
@pytest.mark.asyncio
async def test_pod_name_and_storage_directory_use_the_same_escaped_username(kube_api, username, server):
    kube_api.cluster["nodes"], kube_api.cluster["pods"] = standard_cluster()

    def chart_storage(c):
        # What the values builder sets for shared-hostpath storage: KubeSpawner expands {username} itself.
        c.KubeSpawner.volumes = [{"name": "home",
                                  "hostPath": {"path": "/srv/jhub/{username}", "type": "DirectoryOrCreate"}}]
        c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/workspace/storage"}]
        c.KubeSpawner.init_containers = [{"name": "owner", "image": "busybox",
                                          "command": ["chown", "1000:100", "/srv/jhub/{username}"]}]

    spawner = new_spawner(configured(jhub_cfg(), kube_api.url, prepare=chart_storage), username, server)
    got = await spawn_until_pod(spawner, {"profile": CPU_SLUG})
    slug = safe_slug(username, max_length=48)
    assert slug.islower() and "." not in slug
    expected_pod = f"jupyter-{slug}" + (f"--{safe_slug(server)}" if server else "")
    assert got["metadata"]["name"] == expected_pod
    paths = [v["hostPath"]["path"] for v in got["spec"]["volumes"] if v["name"] == "home"]
    assert paths == [f"/srv/jhub/{slug}"]
    assert got["spec"]["initContainers"][0]["command"][-1] == f"/srv/jhub/{slug}"
