"""A real `jupyterhub` process configured from our chart values, the way the chart's hub pod is.

The chart's own jupyterhub_config.py cannot be used here (charts are never committed), so `chart_part` sets
the few traits it derives from the values these tests look at, from the chart's defaults merged with ours
(`../shared/schemas/z2jh-4.4.0.values.yaml`). Then, as in the pod, `jhub_setup.configure(c, custom.jhub)`
runs. Users' servers go to KubeSpawner, which talks to the shared fake API server (tests/support/kubeapi.py).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from tests.jupyterhub.hubconfigs import chart_defaults, merged

HUB_TESTS = Path(__file__).resolve().parents[1] / "hub"
if str(HUB_TESTS) not in sys.path:
    sys.path.insert(0, str(HUB_TESTS))

from hubtest_hub import Hub  # noqa: E402

from tests.support.kubeapi import KubeApiServer  # noqa: E402

PROBE_TOKEN = "probe-token-0123456789abcdef0123"
PROBE_HEADERS = {"Authorization": f"token {PROBE_TOKEN}", "Content-Type": "application/json"}


def kubeconfig() -> str:
    """kubernetes_asyncio reads one at import; KubeSpawner is then pointed at the test's server."""
    path = os.path.join(tempfile.mkdtemp(prefix="jhub-hubproc-"), "kubeconfig")
    with open(path, "w") as f:
        f.write("apiVersion: v1\nkind: Config\ncurrent-context: t\n"
                "clusters: [{name: t, cluster: {server: 'http://127.0.0.1:9'}}]\n"
                "users: [{name: t, user: {token: t}}]\ncontexts: [{name: t, context: {cluster: t, user: t}}]\n")
    return path


def chart_part(values: dict, kube_url: str) -> str:
    """What the chart's jupyterhub_config.py sets from these values (for the traits under test), plus a
    test-only service with a token that may start and stop servers."""
    hub = merged(chart_defaults(), values)["hub"]
    limit = hub.get("consecutiveFailureLimit")
    lines = [
        'c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"',
        f"c.KubeSpawner.k8s_api_host = {kube_url!r}",
        "c.JupyterHub.services = []",  # the chart starts both lists empty, then adds its own
        "c.JupyterHub.load_roles = []",
    ]
    if limit is not None:  # the chart's set_config_if_not_none(c.Spawner, "consecutive_failure_limit", ...)
        lines.append(f"c.Spawner.consecutive_failure_limit = {int(limit)}")
    lines += [
        f'c.JupyterHub.services.append({{"name": "probe", "api_token": {PROBE_TOKEN!r}}})',
        'c.JupyterHub.load_roles.append({"name": "probe", "scopes": ["admin:users", "admin:servers", '
        '"list:services", "read:services"], "services": ["probe"]})',
    ]
    return "\n".join(lines)


class ValuesHub:
    """A hub started from chart values; `kube` serves the nodes and pods KubeSpawner and the form see."""

    def __init__(self, tmp_path: Path, values: dict, env: dict[str, str] | None = None, extra: str = ""):
        self.kube = KubeApiServer(token="t")  # the token of kubeconfig()
        self.kube.cluster.update({"nodes": [], "pods": []})
        before = chart_part(values, self.kube.url) + "\n" + extra
        try:
            self.hub = Hub(tmp_path, json.loads(json.dumps(values["custom"]["jhub"])),
                           env={"KUBECONFIG": kubeconfig(), **(env or {})}, before=before)
        except BaseException:
            self.kube.stop()
            raise

    def api(self, method: str, path: str, body=None):
        status, _, data = self.hub.request(method, f"/hub/api{path}", headers=PROBE_HEADERS,
                                           body=None if body is None else json.dumps(body))
        return status, (json.loads(data) if data else None)

    def stop(self):
        try:
            self.hub.stop()
        finally:
            self.kube.stop()


class Browser:
    """Cookies and the _xsrf form field, as a browser keeps them, over the hub's own port."""

    def __init__(self, hub: Hub):
        self.hub, self.cookies = hub, {}

    def request(self, method: str, path: str, form: dict | None = None, headers: dict | None = None):
        from urllib.parse import urlencode

        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        status, got, data = self.hub.request(method, path, headers=sent, body=body)
        for name, value in got:
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        location = next((v for k, v in got if k.lower() == "location"), None)
        return status, location, data

    def post_form(self, path: str, fields: dict):
        """GET the page for its _xsrf field, then POST the form."""
        import re

        status, _, page = self.request("GET", path)
        assert status == 200, (path, status)
        xsrf = re.search(rb'name="_xsrf" value="([^"]+)"', page).group(1).decode()
        return self.request("POST", path, form={"_xsrf": xsrf, **fields})
