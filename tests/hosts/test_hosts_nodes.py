"""drain.sh and labels.sh (control plane): node scheduling and jhub's labels."""


def test_drain_cordons_once_and_drains_with_the_agreed_flags(host):
    host.install_microk8s()
    host.add_node("gpu02")
    res = host.run("drain", "drain", env={"JHUB_NODE_NAME": "gpu02", "JHUB_DRAIN_TIMEOUT": "120"})
    kube = [c for c in res.lines() if c.startswith("microk8s kubectl")]
    assert kube == ["microk8s kubectl get node gpu02 -o jsonpath={.spec.unschedulable}{\"|\"}"
                    "{.status.conditions[?(@.type==\"Ready\")].status}",
                    "microk8s kubectl cordon gpu02",
                    "microk8s kubectl drain gpu02 --ignore-daemonsets --delete-emptydir-data --force --timeout=120s"]
    assert res.stdout == ""
    node = host.state("microk8s")["nodes"]["gpu02"]
    assert node["unschedulable"] and node["drained"]
    again = host.run("drain", "drain", env={"JHUB_NODE_NAME": "gpu02"})
    assert not again.has("microk8s kubectl cordon")
    assert "node gpu02 already cordoned" in again.stderr


def test_a_dead_node_is_cordoned_and_its_pods_force_deleted(host):
    host.install_microk8s()
    host.add_node("gpu02", ready="Unknown", pods=["jhub/jupyter-alice", "kube-system/calico-node-abcde"])
    host.add_node("gpu03", pods=["jhub/jupyter-bob"])
    res = host.run("drain", "drain", env={"JHUB_NODE_NAME": "gpu02", "JHUB_DRAIN_TIMEOUT": "120"})
    assert not res.has("microk8s kubectl drain")
    assert res.has("microk8s kubectl cordon gpu02")
    assert res.has("microk8s kubectl delete pods --all-namespaces --field-selector spec.nodeName=gpu02 "
                   "--force --grace-period=0 --wait=false")
    nodes = host.state("microk8s")["nodes"]
    assert nodes["gpu02"]["pods"] == [] and nodes["gpu02"]["unschedulable"]
    assert nodes["gpu03"]["pods"] == ["jhub/jupyter-bob"]  # only that node's pods
    assert ("warning: node gpu02 is not Ready (Ready condition: Unknown), so its pods cannot be evicted; "
            "force-deleting them without waiting") in res.stderr
    assert "force-deleted 2 pod(s) of node gpu02" in res.stderr

    again = host.run("drain", "drain", env={"JHUB_NODE_NAME": "gpu02"})
    assert not again.has("microk8s kubectl cordon")
    assert "force-deleted 0 pod(s) of node gpu02" in again.stderr


def test_a_ready_node_still_fails_when_its_drain_times_out(host):
    host.install_microk8s()
    host.add_node("gpu02", ready="True", drain_blocked=True)
    res = host.run("drain", "drain", env={"JHUB_NODE_NAME": "gpu02", "JHUB_DRAIN_TIMEOUT": "5"}, fails=True)
    assert "draining gpu02 did not finish within 5s" in res.stderr
    assert not res.has("microk8s kubectl delete")


def test_uncordon_only_when_cordoned(host):
    host.install_microk8s()
    host.add_node("gpu02", unschedulable=True)
    res = host.run("drain", "uncordon", env={"JHUB_NODE_NAME": "gpu02"})
    assert res.has("microk8s kubectl uncordon gpu02")
    assert not host.state("microk8s")["nodes"]["gpu02"]["unschedulable"]
    again = host.run("drain", "uncordon", env={"JHUB_NODE_NAME": "gpu02"})
    assert not again.has("microk8s kubectl uncordon")


def test_unknown_node_is_a_noop_and_a_stuck_drain_is_an_error(host):
    host.install_microk8s()
    res = host.run("drain", "drain", env={"JHUB_NODE_NAME": "ghost"})
    assert "node ghost is not in the cluster, nothing to drain" in res.stderr
    assert not res.has("microk8s kubectl cordon") and not res.has("microk8s kubectl drain")
    host.add_node("gpu02", drain_blocked=True)
    res = host.run("drain", "drain", env={"JHUB_NODE_NAME": "gpu02", "JHUB_DRAIN_TIMEOUT": "5"}, fails=True)
    assert "draining gpu02 did not finish within 5s" in res.stderr
    host.set_state("microk8s", never_ready=True)
    res = host.run("drain", "drain", env={"JHUB_NODE_NAME": "gpu02"}, fails=True)
    assert "cannot ask the cluster about node gpu02" in res.stderr


def test_labels_applied_stale_removed_foreign_untouched(host):
    host.install_microk8s()
    host.add_node("gpu02", labels={"team": "ml"})  # set by someone else
    env = {"JHUB_NODE_NAME": "gpu02", "JHUB_LABELS": "pool=a100\njhub.io/gpu=true\n"}
    res = host.run("labels", env=env)
    assert [c for c in res.lines() if " label " in c] == [
        "microk8s kubectl label node gpu02 --overwrite pool=a100 jhub.io/gpu=true"]
    assert host.state("microk8s")["nodes"]["gpu02"]["labels"] == {
        "kubernetes.io/hostname": "gpu02", "team": "ml", "pool": "a100", "jhub.io/gpu": "true"}
    assert host.read("/var/lib/jhub/labels/gpu02") == "jhub.io/gpu\npool\n"

    before = host.snapshot()
    again = host.run("labels", env=env)
    assert not again.has("microk8s kubectl label")
    assert host.snapshot() == before

    res = host.run("labels", env={**env, "JHUB_LABELS": "pool=h100"})
    assert [c for c in res.lines() if " label " in c] == [
        "microk8s kubectl label node gpu02 --overwrite pool=h100",
        "microk8s kubectl label node gpu02 jhub.io/gpu-"]
    assert host.state("microk8s")["nodes"]["gpu02"]["labels"] == {
        "kubernetes.io/hostname": "gpu02", "team": "ml", "pool": "h100"}
    assert host.read("/var/lib/jhub/labels/gpu02") == "pool\n"

    res = host.run("labels", env={**env, "JHUB_LABELS": ""})
    assert host.state("microk8s")["nodes"]["gpu02"]["labels"] == {"kubernetes.io/hostname": "gpu02", "team": "ml"}
    assert not host.p("/var/lib/jhub/labels/gpu02").exists()


def test_bad_labels_and_a_node_that_never_registers(host):
    host.install_microk8s()
    host.add_node("gpu02")
    for labels, message in [("pool", "must be key=value"),
                            ("-pool=a", "the name must be 1-63 letters"),
                            ("Example.COM/pool=a", "the prefix must be a lowercase DNS name"),
                            ("pool=a b", "value 'a b' must be empty or 1-63"),
                            ("pool=" + "x" * 64, "must be empty or 1-63"),
                            ("pool=a\npool=b", "label key 'pool' is listed twice")]:
        res = host.run("labels", env={"JHUB_NODE_NAME": "gpu02", "JHUB_LABELS": labels}, fails=True)
        assert message in res.stderr
        assert res.calls == []
    res = host.run("labels", env={"JHUB_NODE_NAME": "gpu09", "JHUB_LABELS": "a=b", "JHUB_NODE_WAIT_TIMEOUT": "1"},
                   fails=True)
    assert "node gpu09 has not registered with the cluster after 1s" in res.stderr
