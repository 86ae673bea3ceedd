"""Live pods through the real kubernetes client against a local API server stand-in; the admin's delete
is allowed only for user pods in managed namespaces, needs the pod name typed back, and is audited."""

from __future__ import annotations

import pytest
from portal_api_support import ADMIN_TOKEN, make_portal, plain_pod
from portal_test_pods import user_pod

pytest_plugins = ["conftest_api"]


@pytest.fixture
def running(portal):
    portal.cluster.add(user_pod("alice", uid="uid-alice", started="2026-05-20T02:00:00Z"))
    portal.cluster.add(user_pod("bob", uid="uid-bob", started="2026-05-19T04:00:00Z", gpus=0, cpu="2", memory="8Gi"))
    portal.cluster.add(user_pod("carol", uid="uid-carol", started=None))  # still pulling its image
    portal.cluster.add(plain_pod("hub-5d9c7"))
    return portal


def test_admins_see_every_running_user_pod_with_its_resources_and_age(running):
    reply = running.client(token=ADMIN_TOKEN).get("/api/pods").json()
    pods = {p["user"]: p for p in reply["pods"]}
    assert set(pods) == {"alice", "bob", "carol"}  # the hub pod is not a user pod
    alice = pods["alice"]
    assert (alice["node"], alice["cpu"], alice["memory_bytes"], alice["gpus"]) == ("gpu01", 4.0, 16 * 1024**3, 1)
    assert alice["gpu_model"] == "NVIDIA-A100-SXM4-80GB" and alice["phase"] == "Running"
    assert alice["age_seconds"] == 2 * 3600 and alice["uid"] == "uid-alice"
    assert pods["bob"]["age_seconds"] == 24 * 3600 and pods["bob"]["gpus"] == 0
    assert pods["carol"]["started_at"] is None and pods["carol"]["phase"] == "Pending"


def test_users_see_only_their_own_pods(running):
    pods = running.client("bob").get("/api/pods").json()["pods"]
    assert [p["user"] for p in pods] == ["bob"]


def test_an_admin_deletes_a_user_pod_after_typing_its_name(running):
    admin = running.client("root", admin=True)
    reply = admin.post("/api/pods/jhub/jupyter-alice/delete", json={"confirm": "jupyter-alice", "uid": "uid-alice"},
                       headers={"X-CSRF-Token": running.csrf(admin)})
    assert reply.status_code == 200 and reply.json() == {"deleted": "jhub/jupyter-alice", "uid": "uid-alice",
                                                          "user": "alice"}
    assert running.cluster.deleted == [("jhub", "jupyter-alice", "uid-alice")]  # with the UID as precondition
    [entry] = running.audit()
    assert (entry["actor"], entry["action"], entry["target"], entry["at"]) == (
        "root", "pod.delete", "jhub/jupyter-alice", running.now)
    assert entry["detail"]["result"] == "ok" and entry["detail"]["user"] == "alice"


@pytest.mark.parametrize("confirm", ["", "yes", "jupyter-bob", "JUPYTER-ALICE"])
def test_without_the_right_confirmation_nothing_is_deleted(running, confirm):
    reply = running.client(token=ADMIN_TOKEN).post("/api/pods/jhub/jupyter-alice/delete", json={"confirm": confirm})
    assert reply.status_code == 400 and "type the pod name" in reply.json()["detail"]
    assert running.cluster.deleted == [] and running.audit() == []


def test_a_missing_confirmation_is_refused(running):
    reply = running.client(token=ADMIN_TOKEN).post("/api/pods/jhub/jupyter-alice/delete", json={})
    assert reply.status_code == 422 and running.cluster.deleted == []


def test_a_pod_that_is_not_a_user_pod_is_refused_and_the_refusal_audited(running):
    reply = running.client(token=ADMIN_TOKEN).post("/api/pods/jhub/hub-5d9c7/delete", json={"confirm": "hub-5d9c7"})
    assert reply.status_code == 403 and "not a JupyterHub user pod" in reply.json()["detail"]
    assert running.cluster.deleted == []
    [entry] = running.audit()
    assert entry["detail"]["result"] == "refused" and entry["actor"] == "token:ops"


def test_pods_outside_the_managed_namespaces_are_refused(running):
    running.cluster.add(user_pod("mallory", namespace="kube-system"))
    reply = running.client(token=ADMIN_TOKEN).post("/api/pods/kube-system/jupyter-mallory/delete",
                                                   json={"confirm": "jupyter-mallory"})
    assert reply.status_code == 403 and "not managed" in reply.json()["detail"]
    assert running.cluster.deleted == [] and running.audit()[0]["detail"]["result"] == "refused"


def test_a_replaced_pod_is_not_deleted(running):
    reply = running.client(token=ADMIN_TOKEN).post("/api/pods/jhub/jupyter-alice/delete",
                                                   json={"confirm": "jupyter-alice", "uid": "uid-of-an-older-pod"})
    assert reply.status_code == 409 and running.cluster.deleted == []


def test_a_pod_that_is_gone_is_a_404(running):
    reply = running.client(token=ADMIN_TOKEN).post("/api/pods/jhub/jupyter-zed/delete", json={"confirm": "jupyter-zed"})
    assert reply.status_code == 404


def test_users_cannot_delete_pods_not_even_their_own(running):
    bob = running.client("bob")
    reply = bob.post("/api/pods/jhub/jupyter-bob/delete", json={"confirm": "jupyter-bob"},
                     headers={"X-CSRF-Token": running.csrf(bob)})
    assert reply.status_code == 403 and running.cluster.deleted == []


@pytest.mark.parametrize("path", ["/api/pods/JHUB/jupyter-alice/delete", "/api/pods/jhub/jupyter_alice/delete",
                                  "/api/pods/" + "a" * 64 + "/x/delete"])
def test_impossible_names_are_refused_before_kubernetes_is_asked(running, path):
    reply = running.client(token=ADMIN_TOKEN).post(path, json={"confirm": "x"})
    assert reply.status_code == 422 and running.cluster.deleted == []


def test_kubernetes_down_is_a_503_and_an_attempted_delete_is_audited_as_failed(running):
    running.cluster.down = True
    admin = running.client(token=ADMIN_TOKEN)
    listing = admin.get("/api/pods")
    assert listing.status_code == 503 and "Kubernetes API unavailable" in listing.json()["detail"]
    reply = admin.post("/api/pods/jhub/jupyter-alice/delete", json={"confirm": "jupyter-alice"})
    assert reply.status_code == 503
    assert running.audit()[0]["detail"]["result"] == "failed"


def test_no_kubernetes_configured_is_a_503_not_a_crash(portal):
    def no_cluster():
        raise FileNotFoundError("no kubeconfig at ~/.kube/config")

    portal.ctx.kube_factory = no_cluster
    reply = portal.client(token=ADMIN_TOKEN).get("/api/pods")
    assert reply.status_code == 503 and "kubeconfig" in reply.json()["detail"]


def test_per_user_namespaces_are_managed(pg_url, cluster, tmp_path):
    storage = tmp_path / "s"
    storage.mkdir()
    made = make_portal(pg_url, cluster, storage)
    made.ctx.settings = made.ctx.settings.model_copy(update={"user_namespace_prefix": "jhub-"})
    cluster.add(user_pod("alice", namespace="jhub-alice", uid="uid-a"))
    cluster.add(user_pod("eve", namespace="other", uid="uid-e"))
    admin = made.client(token=ADMIN_TOKEN)
    assert [p["namespace"] for p in admin.get("/api/pods").json()["pods"]] == ["jhub-alice"]
    assert admin.post("/api/pods/other/jupyter-eve/delete", json={"confirm": "jupyter-eve"}).status_code == 403
    ok = admin.post("/api/pods/jhub-alice/jupyter-alice/delete", json={"confirm": "jupyter-alice"})
    assert ok.status_code == 200 and cluster.deleted == [("jhub-alice", "jupyter-alice", "uid-a")]
    made.engine.dispose()


def test_namespaces_chosen_by_label_are_managed(pg_url, cluster, tmp_path):
    storage = tmp_path / "s"
    storage.mkdir()
    made = make_portal(pg_url, cluster, storage)
    made.ctx.settings = made.ctx.settings.model_copy(update={"user_namespace_label": "jhub.io/users=true"})
    cluster.namespaces.update({"team-a": {"jhub.io/users": "true"}, "team-b": {}})
    cluster.add(user_pod("alice", namespace="team-a", uid="uid-a"))
    cluster.add(user_pod("eve", namespace="team-b", uid="uid-e"))
    admin = made.client(token=ADMIN_TOKEN)
    assert [p["namespace"] for p in admin.get("/api/pods").json()["pods"]] == ["team-a"]
    assert admin.post("/api/pods/team-b/jupyter-eve/delete", json={"confirm": "jupyter-eve"}).status_code == 403
    assert admin.post("/api/pods/team-a/jupyter-alice/delete", json={"confirm": "jupyter-alice"}).status_code == 200
    made.engine.dispose()
