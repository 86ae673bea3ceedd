"""GPU agents in the cluster (PORTAL_AGENT_AUTH=kubernetes): each sends with its pod's projected
ServiceAccount token, which the portal checks with a TokenReview (the shared fake API server answers as a
1.32 one does) and which is good for its own node's samples only. Refused: another node's batch (403,
logged, nothing stored), an expired or unknown token, another audience or ServiceAccount, a token bound to
no node. A review is kept for the cache bound (and never past the token's expiry), so batches cost no
review each; an unanswered review keeps nothing. The agent reads its token file again for every send."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from gpu_test_support import T0, sample
from portal_api_support import ADMIN_TOKEN, LiveServer, free_port, make_portal, sha

from portal.agent.sender import SampleBuffer, Sender, token_file
from portal.app.settings import load_web_settings
from portal.gpu.models import GpuSample
from portal.settings import SettingsError
from tests.support.kubeapi import status

pytest_plugins = ["conftest_api"]
ACCOUNT = "jhub-portal-gpu-agent"
AUDIENCE = "jhub-portal"
REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"


def agent_pod(name: str, node: str) -> dict:
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "jhub", "uid": f"uid-{name}",
                         "labels": {"app.kubernetes.io/component": "gpu-agent"}},
            "spec": {"nodeName": node, "serviceAccountName": ACCOUNT, "containers": [{"name": "agent", "image": "x"}]},
            "status": {"phase": "Running"}}


class Agents:
    """The portal with node-bound agents, the fake API server, and a clock for the review cache."""

    def __init__(self, portal, cluster) -> None:
        self.portal, self.cluster = portal, cluster
        self.pods = {node: cluster.add(agent_pod(f"{ACCOUNT}-{node}", node)) for node in ("gpu01", "gpu02")}
        self.clock = [time.time()]
        portal.app.state.portal.agents.clock = lambda: self.clock[0]

    @property
    def reviewer(self):
        return self.portal.app.state.portal.agents

    def token(self, node: str = "gpu01", **kw) -> str:
        args = {"namespace": "jhub", "service_account": ACCOUNT, "audiences": [AUDIENCE], "pod": self.pods[node]}
        args.update(kw)
        return self.cluster.issue_token(**args)

    def send(self, token: str, node: str = "gpu01", minute: int = 0):
        body = {"node": node, "batch_id": f"{node}-{minute}",
                "samples": [sample(f"GPU-{node}", T0 + timedelta(minutes=minute))]}
        return self.portal.client(token=token).post("/api/gpu/samples", json=body)

    def stored(self) -> dict[str, int]:
        with self.portal.engine.connect() as conn:
            rows = conn.execute(sa.select(GpuSample.__table__.c.node_name, sa.func.count()).group_by(
                GpuSample.__table__.c.node_name)).all()
        return dict(rows)


@pytest.fixture
def agents(pg_url, cluster, tmp_path):
    made = make_portal(pg_url, cluster, tmp_path, agent_auth="kubernetes", agent_service_account=f"jhub:{ACCOUNT}",
                       agent_audience=AUDIENCE, agent_token_cache_seconds=60)
    made.now = T0 + timedelta(hours=1)
    yield Agents(made, cluster)
    for client in made.clients:
        client.close()
    made.engine.dispose()


def test_an_agent_sends_its_own_nodes_samples_with_its_pods_token(agents):
    reply = agents.send(agents.token("gpu01"))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"accepted": 1, "duplicates": 0} and agents.stored() == {"gpu01": 1}
    (made,) = [r for r in agents.cluster.requests if r["path"] == REVIEWS]
    assert '"audiences": ["jhub-portal"]' in made["body"], "the review asks for the portal's audience"


def test_another_nodes_batch_is_refused_logged_and_not_stored(agents, caplog):
    token = agents.token("gpu01")
    with caplog.at_level(logging.WARNING, logger="portal.app.routes.gpu"):
        reply = agents.send(token, node="gpu02")
    assert reply.status_code == 403 and "bound to node 'gpu01'" in reply.text and "'gpu02'" in reply.text
    assert agents.stored() == {}
    (line,) = [r for r in caplog.records if "another node" in r.getMessage()]
    assert line.node == "gpu02" and line.token_node == "gpu01" and line.pod == f"{ACCOUNT}-gpu01"
    assert agents.send(agents.token("gpu02"), node="gpu02").status_code == 200  # gpu02's own agent may
    assert agents.stored() == {"gpu02": 1}


@pytest.mark.parametrize("case", ["expired", "unknown", "not-a-jwt", "pod-gone"])
def test_an_expired_or_unknown_token_is_refused(agents, case):
    if case == "expired":
        token = agents.token(now=time.time() - 700)  # issued 700 s ago, for 600 s
    elif case == "unknown":
        token = agents.token()[:-6] + "abcdef"  # a signature the API server did not make
    elif case == "not-a-jwt":
        token = "agent-" + "x" * 40
    else:
        token = agents.token()
        agents.cluster.publish("pods", "DELETED", agents.pods["gpu01"])
    reply = agents.send(token)
    assert reply.status_code == 401 and reply.headers["www-authenticate"].lower().startswith("bearer")
    assert agents.stored() == {}
    # what cannot be good (not a JWT, expired by its own claim) is refused without asking the API server
    assert agents.cluster.reviews == (0 if case in ("not-a-jwt", "expired") else 1)


@pytest.mark.parametrize("case, code, words", [
    ("another audience", 401, "not valid"),
    ("another ServiceAccount", 403, "only the GPU agents' ServiceAccount"),
    ("the agents' name in another namespace", 403, "only the GPU agents' ServiceAccount"),
    ("bound to no node", 403, "not bound to a node"),
])
def test_a_token_of_another_audience_or_account_or_no_node_is_refused(agents, case, code, words):
    if case == "another audience":  # e.g. the pod's token for the API server
        token = agents.token(audiences=["https://kubernetes.default.svc.cluster.local"])
    elif case == "another ServiceAccount":
        token = agents.token(service_account="default")
    elif case == "the agents' name in another namespace":
        token = agents.token(namespace="other", pod=None, node="gpu01")
    else:  # `kubectl create token jhub-portal-gpu-agent --audience jhub-portal`: bound to nothing
        token = agents.token(pod=None)
    reply = agents.send(token)
    assert reply.status_code == code and words in reply.text, reply.text
    assert agents.stored() == {}
    assert agents.cluster.reviews == (0 if case == "another audience" else 1)


def test_a_review_is_kept_for_the_cache_bound_and_no_longer(agents):
    token = agents.token()
    for minute in range(5):  # a batch every interval: one review
        assert agents.send(token, minute=minute).status_code == 200
    assert agents.cluster.reviews == 1
    agents.cluster.publish("pods", "DELETED", agents.pods["gpu01"])  # the API server stops accepting it
    agents.clock[0] += 59
    assert agents.send(token, minute=5).status_code == 200, "within the bound the kept answer holds"
    agents.clock[0] += 2
    assert agents.send(token, minute=6).status_code == 401, "past the bound it is reviewed again"
    assert agents.cluster.reviews == 2


def test_a_review_is_never_kept_past_the_tokens_expiry(agents):
    token = agents.token(expires_in=20)
    assert agents.send(token).status_code == 200
    agents.clock[0] += 10
    assert agents.send(token, minute=1).status_code == 200 and agents.cluster.reviews == 1
    agents.clock[0] += 15  # past exp, within the 60 s bound: not kept, and expired
    reply = agents.send(token, minute=2)
    assert reply.status_code == 401 and "expired" in reply.text
    assert agents.stored() == {"gpu01": 2}


def test_refusals_are_kept_too_and_an_unanswered_review_is_not(agents):
    wrong = agents.token(service_account="default")
    assert agents.send(wrong).status_code == 403 and agents.send(wrong).status_code == 403
    assert agents.cluster.reviews == 1
    agents.cluster.route("POST", REVIEWS, lambda request: (403, status(
        403, "Forbidden", 'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:jhub:'
                          'jhub-portal" cannot create resource "tokenreviews"')))
    token = agents.token()
    reply = agents.send(token)
    assert reply.status_code == 503 and "create on tokenreviews" in reply.text
    agents.cluster.routes.clear()
    assert agents.send(token).status_code == 200, "nothing was kept of the failed review"
    agents.cluster.down = True
    assert agents.send(agents.token("gpu02"), node="gpu02").status_code == 503


def test_nothing_but_an_agents_token_sends_and_agent_tokens_do_nothing_else(agents):
    token = agents.token()
    assert agents.portal.client(token=token).get("/api/me").status_code in (401, 403)
    assert agents.send(ADMIN_TOKEN).status_code == 403  # the admin token is not an agent's


def test_the_kubernetes_mode_refuses_unbound_agent_tokens_and_needs_the_account():
    base = {"session_secret": "s" * 40, "agent_auth": "kubernetes"}
    with pytest.raises(SettingsError, match="PORTAL_AGENT_SERVICE_ACCOUNT"):
        load_web_settings(**base, api_tokens={"ops": {"role": "admin", "sha256": sha(ADMIN_TOKEN)}})
    with pytest.raises(SettingsError, match=r"agent-role API tokens \['agent'\] are bound to no node"):
        load_web_settings(**base, agent_service_account=f"jhub:{ACCOUNT}",
                          api_tokens={"agent": {"role": "agent", "sha256": sha("t" * 40)}})
    with pytest.raises(SettingsError, match="must be <namespace>:<name>"):
        load_web_settings(**base, agent_service_account=ACCOUNT,
                          api_tokens={"ops": {"role": "admin", "sha256": sha(ADMIN_TOKEN)}})
    with pytest.raises(SettingsError, match="PORTAL_AGENT_TOKEN_CACHE_SECONDS"):
        load_web_settings(session_secret="s" * 40, agent_token_cache_seconds=3600,
                          api_tokens={"ops": {"role": "admin", "sha256": sha(ADMIN_TOKEN)}})


def test_the_agent_reads_its_rotated_token_file_for_every_send(agents, tmp_path):
    """The kubelet replaces the projected token before it expires; the agent sends the new one at once."""
    path = tmp_path / "token"
    first = agents.token(expires_in=30)
    path.write_text(first)
    with LiveServer(agents.portal.app, "127.0.0.1", free_port()) as live:
        sender = Sender(live.url, token_file(path), "gpu01", SampleBuffer(100))
        sender.buffer.add([sample("GPU-a", T0)])
        assert sender.flush() is True
        second = agents.token(expires_in=600)
        path.write_text(second + "\n")  # rotated
        agents.clock[0] += 40  # the first one has expired
        sender.buffer.add([sample("GPU-a", T0 + timedelta(minutes=1))])
        assert sender.flush() is True and sender.sent_batches == 2
        path.unlink()  # unreadable: the samples stay for the next try
        sender.buffer.add([sample("GPU-a", T0 + timedelta(minutes=2))])
        assert sender.flush() is False and len(sender.buffer) == 1
        path.write_text(second)
        assert sender.flush() is True and len(sender.buffer) == 0
        sender.close()
    reviewed = [r["body"] for r in agents.cluster.requests if r["path"] == REVIEWS]
    assert len(reviewed) == 2 and first in reviewed[0] and second in reviewed[1]
    assert agents.stored() == {"gpu01": 3}


def test_a_review_that_does_not_confirm_the_audience_is_refused(agents):
    """An audience-unaware answer (authenticated, no status.audiences) vouches for the API server's audience
    only, not the portal's (the TokenReview API's own rule)."""
    def unaware(request):
        review = agents.cluster._review({"spec": {"token": agents.token(), "audiences": [AUDIENCE]}})
        review["status"].pop("audiences")
        return 201, review

    agents.cluster.route("POST", REVIEWS, unaware)
    reply = agents.send(agents.token())
    assert reply.status_code == 401 and "audience 'jhub-portal'" in reply.text and agents.stored() == {}
