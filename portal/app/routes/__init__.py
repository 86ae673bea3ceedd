"""HTTP routes, one module per area. ``PUBLIC_ROUTERS`` are the only ones reachable without signing in."""
