"""The portal's routers may be listed in any order (the most asked for first, for speed): no path that one
route answers is answered by another route for the same method, so the order never picks the route."""

from __future__ import annotations

import re

from starlette.routing import compile_path

from portal.app.routing import walk

pytest_plugins = ["conftest_api"]


def _example(path: str) -> str:
    """A concrete path the route answers: each parameter as a plain value."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_no_two_routes_answer_the_same_request(portal):
    routes = [(r.path, r.methods or frozenset({"*"})) for r in walk(portal.app) if r.path]
    assert len(routes) > 30 and any(path == "/me" for path, _ in routes)
    clashes = []
    for path, methods in routes:
        for other, other_methods in routes:
            if other == path or not (methods & other_methods or "*" in methods | other_methods):
                continue
            if compile_path(other)[0].match(_example(path)):
                clashes.append((path, other))
    assert clashes == []
