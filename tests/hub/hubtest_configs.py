"""Small valid `custom.jhub` dicts for tests, and a spawner factory with KubeSpawner's own code."""

import copy
from html.parser import HTMLParser
from types import SimpleNamespace

from traitlets.config import Config

from hubtest_cluster import profiles_cfg


def jhub_cfg(**sections):
    profiles = profiles_cfg()
    cfg = {
        "auth": {"mode": "native", "adminUsers": ["admin"]},
        "profiles": {k: v for k, v in profiles.items()},
    }
    cfg.update(copy.deepcopy(sections))
    return cfg


def make_user(name, uid=7):
    return SimpleNamespace(name=name, id=uid, url=f"/user/{name}/", escaped_name=name)


def configured(cfg, kube_url, env=None, prepare=None):
    """A traitlets Config as the hub would have it: the chart's bits (prepare), then configure()."""
    import jhub_setup

    c = Config()
    c.KubeSpawner.k8s_api_host = kube_url
    if prepare:
        prepare(c)
    jhub_setup.configure(c, cfg, env=env or {})
    return c


def new_spawner(c, username, server_name=""):
    from kubespawner import KubeSpawner
    from kubespawner.clients import load_config

    # kubespawner sets the client's default host once per host (lru_cache): when a later test's local API gets
    # the port of an earlier one, the host of the test in between would stay. Forget it, so this host is set.
    load_config.cache_clear()

    # Spawner.name comes from the ORM row in JupyterHub; a stand-in row carries the server name.
    orm = SimpleNamespace(name=server_name, server=None, state=None, user_options=None)
    return KubeSpawner(config=c, user=make_user(username), orm_spawner=orm, _mock=True)


class SelectOptions(HTMLParser):
    """{select name: [option values]} from a rendered form."""

    def __init__(self, html):
        super().__init__()
        self.selects, self.radios, self._current = {}, [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self._current = self.selects.setdefault(attrs["name"], [])
        elif tag == "option" and self._current is not None:
            self._current.append(attrs["value"])
        elif tag == "input" and attrs.get("name") == "profile":
            self.radios.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag == "select":
            self._current = None


async def spawn_until_pod(spawner, user_options):
    """JupyterHub's and KubeSpawner's own order up to the pod create call:
    User.spawn -> pre_spawn_hook -> KubeSpawner._start -> load_user_options -> get_pod_manifest -> modify_pod_hook.
    Returns the pod (as API JSON) that would be created."""
    spawner.user_options = user_options
    # The flags JupyterHub sets around a spawn: BaseHandler.spawn_single_user / the users API set
    # _spawn_pending (so Spawner.pending == "spawn"), User.spawn sets _start_pending.
    spawner._spawn_pending = spawner._start_pending = True
    try:
        await spawner.run_pre_spawn_hook()
        await spawner.load_user_options()
        pod = await spawner.get_pod_manifest()
        pod = await spawner.modify_pod_hook(spawner, pod)
    finally:
        spawner._spawn_pending = spawner._start_pending = False
    return spawner.api.api_client.sanitize_for_serialization(pod)


__all__ = ["jhub_cfg", "configured", "new_spawner", "SelectOptions", "spawn_until_pod", "SimpleNamespace"]
