"""Portal load benchmark: 1,000,000 sessions in PostgreSQL, the portal served by uvicorn on 127.0.0.1 (its own
process), and 50 concurrent signed-in clients asking for the overview, the billing page and their own page,
a bounded number of requests each. Prints latency percentiles per page and overall; the last lines are
``portal_load_p95: N ms`` and ``portal_load_errors: N requests`` (targets: p95 under 100 ms, no errors).

    python benchmarks/portal_load.py      # PostgreSQL from JHUB_TEST_PG_URL (a throwaway db is made)
    python benchmarks/portal_load.py --client both --requests 30
    python benchmarks/portal_load.py --database jhub_portal_load   # seed once, keep it for the next runs

The client and the server share this machine's cores, so the CPU seconds each used are printed too.
``--client raw`` (the default) is a minimal HTTP/1.1 keep-alive client on asyncio streams, so that the
figures measure the portal more than the client; ``--client httpx`` is the httpx.AsyncClient one;
``--client both`` runs httpx, then raw, each against a freshly started portal (empty caches).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
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
from benchmarks.throwaway_db import ADMIN_URL, run_in_throwaway_database  # noqa: E402
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


def sessions_for(url: str, clients: int) -> list[str]:
    """One signed-in browser session per client (admins, so each may open all three pages)."""
    from portal.app.auth.cookies import CookieSigner
    from portal.app.auth.sessions import SessionStore

    engine = make_engine(url)
    store = SessionStore(engine, CookieSigner(SECRET, max_age=8 * 3600, secure=False), None,
                         clock=lambda: NOW, check_seconds=60)
    cookies = [store.create(name=f"user{i % USERS:03d}", admin=True) for i in range(clients)]
    engine.dispose()
    return cookies


async def raw_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str,
                  cookie: str) -> tuple[int, bytes]:
    """One GET on a kept-alive connection; the status and the body (the portal sends Content-Length)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: portal_session={cookie}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    raise ValueError("a reply without Content-Length (this client reads no chunked bodies)")


async def load_raw(base: str, cookies: list[str], requests: int) -> tuple[dict[str, list[float]], int]:
    host_port = base.removeprefix("http://")
    host, port = host_port.split(":")
    times: dict[str, list[float]] = {}
    errors = 0

    async def client(index: int, cookie: str) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for n in range(requests):
                path = PAGES[(index + n) % len(PAGES)]
                started = time.perf_counter()
                try:
                    status, body = await raw_get(reader, writer, host_port, path, cookie)
                    ok = status == 200 and b"</html>" in body
                except (OSError, ValueError, asyncio.IncompleteReadError):
                    ok = False
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
                elapsed = (time.perf_counter() - started) * 1000
                times.setdefault(path.split("?")[0], []).append(elapsed)
                errors += not ok
        finally:
            writer.close()

    await asyncio.gather(*(client(i, c) for i, c in enumerate(cookies)))
    return times, errors


async def load(base: str, cookies: list[str], requests: int) -> tuple[dict[str, list[float]], int]:
    import httpx

    times: dict[str, list[float]] = {}
    errors = 0

    async def client(index: int, cookie: str) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, cookies={"portal_session": cookie}, timeout=60) as http:
            for n in range(requests):
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, cookies: list[str], client: str, requests: int) -> tuple[dict[str, list[float]], int]:
    """One load against a freshly started portal (empty caches): the times per page and the errors."""
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
        for path in set(PAGES):  # warm: first use of each page (template compile, imports), one user only
            httpx.get(base + path, cookies={"portal_session": cookies[0]}, timeout=60).raise_for_status()
        server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
        started = time.perf_counter()
        loader = load_raw if client == "raw" else load
        times, errors = asyncio.run(loader(base, cookies, requests))
        wall = time.perf_counter() - started
        server_cpu, client_cpu = cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
    finally:
        server.terminate()
        server.join(10)
    every = [t for values in times.values() for t in values]
    print(f"{len(every)} requests from {len(cookies)} concurrent clients ({client} client) in {wall:.1f} s "
          f"({len(every) / wall:.0f}/s), {SESSIONS} sessions, at {NOW:%Y-%m-%d %H:%M} UTC")
    print(f"  CPU during the load: server {server_cpu:.1f} s ({server_cpu / wall * 100:.0f}% of a core), "
          f"client {client_cpu:.1f} s ({client_cpu / wall * 100:.0f}% of a core); {os.cpu_count()} cores")
    for page, values in sorted(times.items()):
        print(f"  {page:<10} {len(values):5d} requests  p50 {statistics.median(values):7.1f} ms  "
              f"p95 {percentile(values, 95):7.1f} ms  p99 {percentile(values, 99):7.1f} ms")
    print(f"  {client}: p50 {statistics.median(every):.1f} ms, p95 {percentile(every, 95):.1f} ms, {errors} errors")
    return times, errors


def seeded(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM pod_sessions")).scalar_one() >= SESSIONS
    finally:
        engine.dispose()


def run(url: str, options: argparse.Namespace) -> None:
    migrate(url)
    if options.database and seeded(url):
        print(f"data: the {SESSIONS} sessions seeded before in {options.database}")
    else:
        seed(url)
    cookies = sessions_for(url, options.clients)
    clients = ["httpx", "raw"] if options.client == "both" else [options.client]
    for client in clients:  # the last one gives the final lines
        times, errors = measure(url, cookies, client, options.requests)
    every = [t for values in times.values() for t in values]
    print(f"portal_load_p50: {statistics.median(every):.1f} ms")
    print(f"portal_load_p95: {percentile(every, 95):.1f} ms")
    print(f"portal_load_errors: {errors} requests")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=CLIENTS, help="concurrent signed-in clients (50)")
    parser.add_argument("--requests", type=int, default=REQUESTS_PER_CLIENT, help="requests per client (30)")
    parser.add_argument("--client", choices=("raw", "httpx", "both"), default="raw",
                        help="the HTTP client: raw (default), httpx, or both (httpx first; the final lines are raw's)")
    parser.add_argument("--database", metavar="NAME",
                        help="use and keep this database (seeded once, reused by the next runs) instead of a "
                             "throwaway one")
    options = parser.parse_args()
    if options.database:
        run(kept_database(options.database), options)
    else:
        run_in_throwaway_database(lambda url: run(url, options))


def kept_database(name: str) -> str:
    """The URL of database ``name`` on the JHUB_TEST_PG_URL server, made when missing."""
    if not name.isidentifier():
        raise SystemExit(f"--database: {name!r} is not a plain database name")
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


if __name__ == "__main__":
    main()
