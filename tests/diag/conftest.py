"""`jhub diag` against the shared fake API server (tests/support/kubeapi.py) over HTTPS with a token, through
the real `kubernetes` client."""

from __future__ import annotations

import json

import pytest

from scripts.diagnosis import cli
from tests.diag.cluster import NOW, Healthy
from tests.support.kubeapi import KubeApiServer


@pytest.fixture
def api():
    with KubeApiServer(tls=True, token="diag-secret-token-1234") as server:
        yield server


@pytest.fixture
def cluster(api):
    return Healthy(api)


class Diag:
    def __init__(self, cluster: Healthy, tmp_path, capsys) -> None:
        self.cluster, self.tmp_path, self.capsys = cluster, tmp_path, capsys
        self.kubeconfig = cluster.api.write_kubeconfig(tmp_path / "kubeconfig")
        self.facts = cluster.write_facts(tmp_path / "nodes.json")

    def __call__(self, *extra: str) -> tuple[int, str, str]:
        argv = ["--kubeconfig", str(self.kubeconfig), "--facts", self.facts, "--stack", "airgapped", *extra]
        code = cli.main(argv, now=NOW)
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *extra: str) -> tuple[int, dict]:
        code, out, _ = self("--json", *extra)
        return code, json.loads(out)


@pytest.fixture
def diag(cluster, tmp_path, capsys):
    return Diag(cluster, tmp_path, capsys)
