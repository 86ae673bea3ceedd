"""The portal and the hub reach each other through the NetworkPolicies the real z2jh chart renders with the
values the program generates (the hub's ingress admits the portal pod; its egress admits the pod network),
and the portal's own policy admits the chart's hub pod."""

from __future__ import annotations

import ipaddress

import pytest

from components.portal import images as im
from tests.portal_deploy.deploy_support import hub_values, manifest_of, run_dev

from tests.support import helm


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def admits_ip(peer: dict, address: str) -> bool:
    block = peer.get("ipBlock")
    if not block:
        return False
    ip = ipaddress.ip_address(address)
    return ip in ipaddress.ip_network(block["cidr"]) and not any(
        ip in ipaddress.ip_network(e) for e in block.get("except", []))


@pytest.fixture(scope="module")
def rendered():
    run = run_dev()  # helm.render skips, saying why, where helm or ../shared/ is absent
    return run, helm.render("jupyterhub-4.4.0.tgz", hub_values(run), release="jupyterhub", namespace="jhub")


def test_the_hub_admits_the_portal_and_may_call_it(rendered):
    run, objects = rendered
    policy = next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "hub")["spec"]
    hub_pod = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "hub")
    portal_labels = manifest_of(run.named("portal-deployment"))["spec"]["template"]["metadata"]["labels"]
    assert any(selects(peer["podSelector"], portal_labels) for rule in policy["ingress"]
               for peer in rule.get("from", []) if "podSelector" in peer), "the portal may call the hub's API"
    pod_ip = str(next(ipaddress.ip_network(im.POD_CIDR).hosts()))
    assert any(admits_ip(peer, pod_ip) and not rule.get("ports") for rule in policy["egress"]
               for peer in rule.get("to", [])), "the hub may call the portal on the pod network"
    # ... and the portal's own policy selects the hub pod the chart really runs.
    hub_labels = hub_pod["spec"]["template"]["metadata"]["labels"]
    mine = manifest_of(run.named("portal-network-policy"))["spec"]["ingress"]
    assert any(selects(peer["podSelector"], hub_labels) for rule in mine for peer in rule["from"]
               if "podSelector" in peer)
