"""The notices banner's portal client and cache (jhub_notices.py) against a real HTTP server started by the test:
one request per user per refresh period, shared by concurrent pages; a down, slow or confused portal costs one
log line and no banner, within the timeout. The banner in a real hub with the real portal:
tests/portal/test_gpu_notices_on_hub.py."""

import asyncio
import logging
import socket
import time
from types import SimpleNamespace

import pytest
from jinja2 import DictLoader, Environment

from jhub_config import validate
from jhub_notices import NoticeCache
from hubtest_configs import jhub_cfg
from test_hub_limits import TOKEN, closed_port_url, portal_cfg

IDLE = {"kind": "idle-gpu", "server_name": "", "pod_name": "jupyter-bob", "gpu_count": 2,
        "idle_since": "2026-05-20T00:55:00Z", "stop_at": "2026-05-20T04:00:00Z",
        "message": "Your server holds 2 GPUs that have been idle since <08:55>."}
BANNER = "{% if jhub_notices %}{% for n in jhub_notices() %}[{{ n.message }}]{% endfor %}{% endif %}"


def cache(url, clock=time.monotonic, **notices):
    portal = validate(jhub_cfg(portal=portal_cfg(url, notices=notices)))["portal"]
    return NoticeCache(portal, clock=clock)


async def render(notices, user):
    """As JupyterHub renders its pages (jinja2 async) with our template_vars callable."""
    env = Environment(loader=DictLoader({"t": BANNER}), enable_async=True, autoescape=True)
    return await env.get_template("t").render_async(jhub_notices=notices.template_var(user))


def render_sync(notices, user):
    """As JupyterHub renders its error pages (jinja2 sync)."""
    env = Environment(loader=DictLoader({"t": BANNER}), autoescape=True)
    return env.get_template("t").render(jhub_notices=notices.template_var(user))


def user(name):
    return SimpleNamespace(name=name)


@pytest.mark.asyncio
async def test_the_hub_asks_with_its_token_once_per_refresh_period(tornado_client, server, monkeypatch):
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    server.route("GET", "/api/users/*", lambda req: (200, {"notices": [IDLE] if "/bob/" in req["path"] else []}))
    now = [100.0]
    notices = cache(server.url, clock=lambda: now[0], refreshSeconds=60)
    got = await asyncio.gather(*(notices.notices("Bob Smith/x") for _ in range(5)), notices.notices("bob"))
    assert got[:5] == [[]] * 5 and got[5][0]["message"] == IDLE["message"] and got[5][0]["stop_at"]
    assert sorted(r["path"] for r in server.requests) == ["/api/users/Bob%20Smith%2Fx/notices",
                                                          "/api/users/bob/notices"]  # 5 pages, 1 request
    assert {r["headers"]["authorization"] for r in server.requests} == {f"Bearer {TOKEN}"}
    now[0] += 59
    await notices.notices("bob")
    assert len(server.requests) == 2
    now[0] += 1
    await notices.notices("bob")
    assert len(server.requests) == 3


@pytest.mark.asyncio
async def test_templates_get_escaped_messages_async_from_the_portal_and_sync_from_the_cache(server, monkeypatch):
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    server.route("GET", "/api/users/*", lambda req: (200, {"notices": [IDLE] if "/bob/" in req["path"] else []}))
    notices = cache(server.url)
    assert await render(notices, None) == "" and notices.template_var(None) is None  # signed out: nothing asked
    assert render_sync(notices, user("bob")) == ""  # an error page: the cache only, nothing asked
    assert server.requests == []
    banner = await render(notices, user("bob"))
    assert banner == "[Your server holds 2 GPUs that have been idle since &lt;08:55&gt;.]"
    assert render_sync(notices, user("bob")) == banner
    assert await render(notices, user("alice")) == ""
    assert len(server.requests) == 2


@pytest.mark.parametrize("answer", [(500, {"detail": "boom"}), (403, {"detail": "no"}), (200, ["x"]),
                                    (200, {"notices": [{"kind": "idle-gpu"}]}), (200, {"notices": "x"})])
@pytest.mark.asyncio
async def test_a_bad_answer_shows_nothing_and_logs_one_line(tornado_client, server, monkeypatch, caplog, answer):
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    server.route("GET", "/api/users/*", lambda req: answer)
    notices = cache(server.url)
    with caplog.at_level(logging.WARNING, logger="jhub.notices"):
        assert await notices.notices("bob") == []
        assert await notices.notices("bob") == []  # not asked again before refreshSeconds
    (line,) = [r.getMessage() for r in caplog.records if r.name == "jhub.notices"]
    assert line.startswith("no notices banner for bob: the portal gave no answer: ") and TOKEN not in line
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_a_down_or_hanging_portal_costs_at_most_the_timeout(tornado_client, monkeypatch, caplog):
    monkeypatch.setenv("JHUB_PORTAL_TOKEN", TOKEN)
    with caplog.at_level(logging.WARNING, logger="jhub.notices"):
        assert await cache(closed_port_url()).notices("bob") == []
    assert "no notices banner for bob" in caplog.text
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        assert await cache(f"http://127.0.0.1:{silent.getsockname()[1]}", timeoutSeconds=0.5).notices("bob") == []
        assert time.monotonic() - started < 2
    assert "timed out" in caplog.text or "Timeout" in caplog.text


def test_the_banner_is_configured_only_with_the_portal_and_its_settings_are_checked(kube_api):
    from jhub_config import ConfigError
    from hubtest_configs import configured

    env = {"JHUB_PORTAL_TOKEN": TOKEN}
    on = configured(jhub_cfg(portal=portal_cfg("http://portal:8000")), kube_api.url, env=env)
    assert callable(on.JupyterHub.template_vars["jhub_notices"])
    assert "jhub_title" in on.JupyterHub.template_vars  # branding's own stay
    off = configured(jhub_cfg(portal=portal_cfg("http://portal:8000", notices={"enabled": False})), kube_api.url,
                     env=env)
    assert "jhub_notices" not in off.JupyterHub.template_vars
    assert "jhub_notices" not in configured(jhub_cfg(), kube_api.url).JupyterHub.template_vars
    with pytest.raises(ConfigError, match=r"custom.jhub.portal.notices.refreshSeconds: must be a number >= 1"):
        validate(jhub_cfg(portal=portal_cfg("http://portal:8000", notices={"refreshSeconds": 0})))
    with pytest.raises(ConfigError, match=r"custom.jhub.portal.notices.every: unknown key"):
        validate(jhub_cfg(portal=portal_cfg("http://portal:8000", notices={"every": 5})))
