"""A Proxy that routes nothing, so a test hub needs no configurable-http-proxy.

Tests talk to the hub's own port (hub_bind_url), which serves every /hub/ page; the proxy only forwards
user-server traffic, which these tests never send.
"""

from jupyterhub.proxy import Proxy


class NullProxy(Proxy):
    should_start = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._routes = {}

    async def add_route(self, routespec, target, data):
        self._routes[routespec] = {"routespec": routespec, "target": target, "data": data}

    async def delete_route(self, routespec):
        self._routes.pop(routespec, None)

    async def get_all_routes(self):
        return dict(self._routes)
