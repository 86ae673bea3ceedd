"""Every route an app answers, as it answers it (path, methods, endpoint, dependencies).

Recent FastAPI keeps included routers as lazy ``_IncludedRouter`` entries in ``app.routes``;
``fastapi.routing.iter_route_contexts`` expands them with the include's dependencies applied.
Older FastAPI flattened them into plain APIRoutes. Both are handled here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import FastAPI


@dataclass(frozen=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    endpoint: Callable | None
    dependency_calls: tuple[Callable, ...]  # the route's own and its include's dependencies


def _calls(route) -> tuple[Callable, ...]:
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return ()
    return tuple(dep.call for dep in dependant.dependencies)


def walk(app: FastAPI) -> Iterator[RouteInfo]:
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before lazy includes
        routes = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    for route in routes:
        yield RouteInfo(path=getattr(route, "path", None) or "",
                        methods=frozenset(getattr(route, "methods", None) or ()),
                        endpoint=getattr(route, "endpoint", None), dependency_calls=_calls(route))
