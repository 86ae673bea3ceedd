"""The portal boots from the Deployment the program generates: the same image command (the Dockerfile's
ENTRYPOINT + each container's args), the same environment with its Secret references resolved from the
registered Secret. What cannot exist here is swapped, and only that: the database URL points at a throwaway
database on the local PostgreSQL, the listen address at a free loopback port, and the in-cluster API access
at a local fake Kubernetes API (tests/portal/portal_test_kube.py)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from tests.portal.portal_test_kube import FakeKubeApi, write_kubeconfig
from tests.portal_deploy.deploy_support import hub_values, manifest_of, run_dev, unwrap
from tests.support.program import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def entrypoint() -> list[str]:
    text = (ROOT / "portal" / "Dockerfile").read_text()
    found = re.search(r'^ENTRYPOINT\s+\[(.*)\]\s*$', text, flags=re.M)
    assert found, "portal/Dockerfile has an exec-form ENTRYPOINT"
    return [part.strip().strip('"') for part in found.group(1).split(",")]


def resolved_env(container: dict, secrets: dict[str, dict]) -> dict[str, str]:
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
    return env


@pytest.fixture
def kube(tmp_path):
    api = FakeKubeApi()
    api.lists = [([], "1")]
    write_kubeconfig(api, tmp_path / "kubeconfig")
    yield api
    api.close()


def test_the_generated_deployment_boots_ready_and_sends_browsers_to_the_hub(secret_steps, pg_database_url, kube,
                                                                          tmp_path):
    run = run_dev()
    secret = run.named("portal-secret")
    # Unnamed in its manifest: the mocks name it like Pulumi does, `<resource name>-<suffix>`.
    secrets = {f"{secret.name}-5f3a9c1e": unwrap(secret.inputs)["stringData"]}
    spec = manifest_of(run.named("portal-deployment"))["spec"]["template"]["spec"]
    assert entrypoint() == ["python", "-m", "portal"]
    port = free_port()
    swapped = {"PORTAL_DATABASE_URL": pg_database_url, "PORTAL_HOST": "127.0.0.1", "PORTAL_PORT": str(port),
               "PORTAL_KUBE_CONFIG_MODE": "kubeconfig", "PORTAL_KUBECONFIG": str(kube.kubeconfig)}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "JUPYTERHUB_"))}

    def command(container):
        assert "command" not in container, "the image's ENTRYPOINT runs"
        env = resolved_env(container, secrets)
        assert env["PORTAL_DATABASE_URL"].startswith("postgresql+psycopg://portal:")
        return [sys.executable, "-m", "portal", *container["args"]], {**base, **env, **swapped}

    (migrate,) = spec["initContainers"]
    argv, env = command(migrate)
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]

    (portal,) = spec["containers"]
    argv, env = command(portal)
    assert env["PORTAL_AUTO_MIGRATE"] == "false", "the init container migrated; the server does not"
    log = open(tmp_path / "portal.log", "w+")
    server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(url, server, tmp_path)
        assert ready["status"] == "ok" and ready["database"] == "ok", ready
        # An anonymous browser: each redirect followed by hand until it leaves the portal.
        with httpx.Client(follow_redirects=False, timeout=10) as browser:
            location, hops = f"{url}/", 0
            while location.startswith(url) and hops < 5:
                answer = browser.get(location, headers={"Accept": "text/html"})
                assert answer.status_code in (302, 303, 307), (location, answer.status_code, answer.text[:300])
                location, hops = urljoin(location, answer.headers["location"]), hops + 1
        service = hub_values(run)["custom"]["jhub"]["portal"]["service"]
        hub_public = env["PORTAL_HUB_PUBLIC_URL"]
        target = urlsplit(location)
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{hub_public}/hub/api/oauth2/authorize"
        query = parse_qs(target.query)
        assert query["client_id"] == [service["oauthClientId"]] == ["service-portal"]
        assert query["redirect_uri"] == [service["oauthRedirectUri"]]
        assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    text = (tmp_path / "portal.log").read_text()
    for value in secrets[next(iter(secrets))].values():
        assert value not in text, "a secret reached the portal's log"


def wait_ready(url: str, server: subprocess.Popen, tmp_path) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            answer = httpx.get(f"{url}/readyz", timeout=2)
            if answer.status_code == 200:
                return answer.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the portal did not get ready:\n{(tmp_path / 'portal.log').read_text()[-3000:]}")
