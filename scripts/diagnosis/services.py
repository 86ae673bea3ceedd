"""The hub's health, the proxy's routes and the portal's readiness, asked through the API server's service
proxy (GETs only, so no token of the hub or the proxy is needed).

The proxy's REST API (`proxy-api`) wants its own token in an `Authorization` header, which the API server's
proxy does not pass on; so the routes are checked by what they do: `/hub/` through `proxy-public` must reach
the hub, and `/user/<name>/api` the server of every running user pod (Jupyter Server answers `/api` with its
version, without credentials)."""

from __future__ import annotations

import json
from urllib.parse import quote

from .report import Section

HUB, HUB_PORT = "hub", 8081  # the z2jh chart's Services
PROXY, PROXY_PORT = "proxy-public", 80
PORTAL, PORTAL_PORT = "jhub-portal", 29781  # components/settings/portal.py SERVICE_NAME, SERVICE_PORT
USER_POD = "component=singleuser-server"
USERNAME_LABEL = "hub.jupyter.org/username"
USERNAME_ANNOTATION = "hub.jupyter.org/username"


def _short(body: str) -> str:
    return " ".join(body.split())[:160]


def hub(cluster, namespace: str) -> Section:
    section = Section("hub")
    code, body = cluster.service_get(namespace, HUB, HUB_PORT, "hub/health")
    section.data["health"] = code
    if code == 200:
        section.say(f"hub: /hub/health answers 200 (service {namespace}/{HUB}:{HUB_PORT})")
    else:
        section.problem(f"hub: /hub/health answers {code}: {_short(body)}",
                        f"kubectl -n {namespace} logs deploy/hub; kubectl -n {namespace} rollout restart deploy/hub")
    code, body = cluster.service_get(namespace, PROXY, PROXY_PORT, "hub/health")
    section.data["proxyToHub"] = code
    if code == 200:
        section.say("proxy: route / -> hub works (proxy-public /hub/health answers 200)")
    else:
        section.problem(f"proxy: /hub/health through proxy-public answers {code}: {_short(body)}",
                        f"kubectl -n {namespace} logs deploy/proxy; "
                        f"kubectl -n {namespace} rollout restart deploy/proxy")
    routes = {}
    for pod in cluster.pods(namespace, USER_POD):
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        meta = pod["metadata"]
        user = (meta.get("annotations") or {}).get(USERNAME_ANNOTATION) or (meta.get("labels") or {}).get(
            USERNAME_LABEL)
        if not user:
            continue
        code, body = cluster.service_get(namespace, PROXY, PROXY_PORT, f"user/{quote(user, safe='')}/api")
        try:
            routed = code == 200 and "version" in json.loads(body)
        except ValueError:
            routed = False
        routes[user] = routed
        if not routed:
            section.problem(f"proxy: no route to {user}'s running server (pod {meta['name']}; /user/{user}/api "
                            f"answers {code})",
                            f"kubectl -n {namespace} rollout restart deploy/hub (the hub adds its routes again at "
                            "start)")
    section.data["userRoutes"] = routes
    if routes:
        section.say(f"proxy: {sum(routes.values())} of {len(routes)} running user servers routed")
    return section


def portal(cluster, namespace: str, enabled: bool | None) -> Section:
    section = Section("portal")
    names = {s["metadata"]["name"] for s in cluster.services(namespace)}
    if PORTAL not in names:
        section.data["deployed"] = False
        if enabled:
            section.problem(f"portal: no Service {namespace}/{PORTAL} although jhub:portal.enabled is true",
                            "pulumi up")
        else:
            section.say("portal: not deployed (jhub:portal.enabled: false)")
        return section
    code, body = cluster.service_get(namespace, PORTAL, PORTAL_PORT, "readyz")
    section.data.update({"deployed": True, "readyz": code})
    try:
        detail = json.loads(body)
    except ValueError:
        detail = {}
    section.data["detail"] = detail if isinstance(detail, dict) else {}
    if code == 200:
        section.say(f"portal: /readyz answers 200 ({_short(body)})")
    else:
        fix = f"kubectl -n {namespace} logs deploy/{PORTAL}"
        if isinstance(detail, dict) and "migration" in str(detail.get("database", "")):
            fix = f"kubectl -n {namespace} rollout restart deploy/{PORTAL} (its init container migrates)"
        section.problem(f"portal: /readyz answers {code}: {_short(body)}", fix)
    return section
