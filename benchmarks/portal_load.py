"""Portal load benchmark: 1,000,000 sessions in PostgreSQL, the portal served by uvicorn on 127.0.0.1 (its own
process), and 50 concurrent signed-in clients asking for the overview, the billing page and their own page,
a bounded number of requests each. Prints latency percentiles per page and overall; the last lines are
``portal_load_p95: N ms`` and ``portal_load_errors: N requests`` (targets: p95 under 100 ms, no errors).

    python benchmarks/portal_load.py      # PostgreSQL from JHUB_TEST_PG_URL (a throwaway db is made)
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import secrets
import socket
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.billing import GENERATE, NOW, SESSIONS, USERS, ZONE  # noqa: E402
from benchmarks.throwaway_db import run_in_throwaway_database  # noqa: E402
from portal.db import make_engine, migrate  # noqa: E402
from portal.rollups import rebuild_rollups  # noqa: E402

CLIENTS = 50
REQUESTS_PER_CLIENT = 30
SECRET = "bench-session-secret-" + "x" * 40
PAGES = ("/overview", "/billing", "/me", "/billing?month=2025-11&group_by=gpu_model&sort=total_cost&order=desc",
         "/overview", "/me")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(url: str, port: int) -> None:
    """The portal as `python -m portal` builds it (no collector: the data is fixed), at the benchmark's now."""
    import logging

    import uvicorn

    from portal.app import create_app
    from portal.app.settings import load_web_settings
    from portal.settings import load_settings

    logging.basicConfig(level=logging.WARNING)
    token = secrets.token_urlsafe(16)
    digest = hashlib.sha256(token.encode()).hexdigest()
    web = load_web_settings(session_secret=SECRET, log_level="warning",
                            api_tokens={"bench": {"role": "admin", "sha256": digest}})
    settings = load_settings(database_url=url, timezone=ZONE.key)

    def no_cluster():
        raise RuntimeError("no Kubernetes API in this benchmark")

    app = create_app(settings, web, kube_factory=no_cluster, clock=lambda: NOW)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def seed(url: str) -> None:
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text(GENERATE), {"now": NOW})  # one set-based INSERT ... SELECT generate_series
        rebuild_rollups(conn, ZONE)  # what the collector keeps as sessions close
        # some budgets, a few of them overrun
        conn.execute(sa.text("INSERT INTO users (name, gpu_hours_monthly, budget_monthly, updated_at, updated_by) "
                             "SELECT 'user' || lpad(g::text, 3, '0'), 50 + g * 10, CASE WHEN g % 2 = 0 THEN 500 END, "
                             ":now, 'benchmark' FROM generate_series(0, 39) AS g"), {"now": NOW})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
        count, open_ = conn.execute(sa.text(
            "SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL) FROM pod_sessions")).one()
        rollups = conn.execute(sa.text("SELECT count(*) FROM usage_daily")).scalar_one()
    engine.dispose()
    print(f"data: {count} sessions ({open_} open), {rollups} daily rollup rows, seeded in "
          f"{time.perf_counter() - started:.0f} s")


def sessions_for(url: str) -> list[str]:
    """One signed-in browser session per client (admins, so each may open all three pages)."""
    from portal.app.auth.cookies import CookieSigner
    from portal.app.auth.sessions import SessionStore

    engine = make_engine(url)
    store = SessionStore(engine, CookieSigner(SECRET, max_age=8 * 3600, secure=False), None,
                         clock=lambda: NOW, check_seconds=60)
    cookies = [store.create(name=f"user{i % USERS:03d}", admin=True) for i in range(CLIENTS)]
    engine.dispose()
    return cookies


async def load(base: str, cookies: list[str]) -> tuple[dict[str, list[float]], int]:
    import httpx

    times: dict[str, list[float]] = {}
    errors = 0

    async def client(index: int, cookie: str) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, cookies={"portal_session": cookie}, timeout=60) as http:
            for n in range(REQUESTS_PER_CLIENT):
                path = PAGES[(index + n) % len(PAGES)]
                started = time.perf_counter()
                try:
                    reply = await http.get(path)
                    ok = reply.status_code == 200 and b"</html>" in reply.content
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - started) * 1000
                times.setdefault(path.split("?")[0], []).append(elapsed)
                errors += not ok

    await asyncio.gather(*(client(i, c) for i, c in enumerate(cookies)))
    return times, errors


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(url: str) -> None:
    migrate(url)
    seed(url)
    cookies = sessions_for(url)
    port = _free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(url, port), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or not server.is_alive():
                raise RuntimeError("the portal did not start")
            time.sleep(0.2)
        for path in set(PAGES):  # warm: first use of each page (template compile, imports)
            httpx.get(base + path, cookies={"portal_session": cookies[0]}, timeout=60).raise_for_status()
        started = time.perf_counter()
        times, errors = asyncio.run(load(base, cookies))
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.join(10)
    every = [t for values in times.values() for t in values]
    print(f"{len(every)} requests from {CLIENTS} concurrent clients in {wall:.1f} s ({len(every) / wall:.0f}/s), "
          f"{SESSIONS} sessions, at {NOW:%Y-%m-%d %H:%M} UTC")
    for page, values in sorted(times.items()):
        print(f"  {page:<10} {len(values):5d} requests  p50 {statistics.median(values):7.1f} ms  "
              f"p95 {percentile(values, 95):7.1f} ms  p99 {percentile(values, 99):7.1f} ms")
    print(f"portal_load_p50: {statistics.median(every):.1f} ms")
    print(f"portal_load_p95: {percentile(every, 95):.1f} ms")
    print(f"portal_load_errors: {errors} requests")


def main() -> None:
    run_in_throwaway_database(run)


if __name__ == "__main__":
    main()
