"""GPU ingest benchmark: 100 nodes x 8 GPUs, each node sending one batch every 10 s for a simulated hour,
through the portal's real ASGI application (auth, validation, the ingest route) into PostgreSQL.

Each node authenticates as in the cluster: with its own pod-bound ServiceAccount token, which the portal
checks with a TokenReview against the tests' local API server (tests/support/kubeapi.py) and keeps for
PORTAL_AGENT_TOKEN_CACHE_SECONDS, so the reviews are counted in the portal's CPU but are not one per batch
(``--auth api-token``: one shared agent-role API token, as a trial without Kubernetes).

Prints the portal's CPU (process CPU time spent handling the batches, plus its GPU worker's idle-GPU
passes and retention prune at their intervals, / the simulated hour, as % of one core), the p50 of one node's batch, and the database's growth per GPU-day: raw samples (pruned after the
retention period, so bounded by it) and the rollups that are kept. The last lines are ``name: value unit``.

    python benchmarks/gpu_ingest.py              # PostgreSQL from JHUB_TEST_PG_URL (a throwaway db is made)
    python benchmarks/gpu_ingest.py --minutes 10 # a shorter simulated time
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.throwaway_db import run_in_throwaway_database  # noqa: E402
from portal.db import make_engine, migrate  # noqa: E402
from portal.gpu.ingest import prune_samples  # noqa: E402
from portal.gpu.reclaim import reclaim_pass  # noqa: E402
from portal.models import PodSession  # noqa: E402

NODES, GPUS, INTERVAL = 100, 8, 10
START = datetime(2026, 5, 20, 0, 0, tzinfo=UTC)
TOKEN = "bench-agent-token-" + "x" * 24
GIB = 1024**3
TABLES = ("gpu_samples", "gpu_hourly", "gpu_session_usage")
SESSIONS_PER_GPU_DAY = 1  # for the kept-rollup figure: each GPU starts one new session a day


AGENT_ACCOUNT = "jhub-portal-gpu-agent"


def _app(url: str, auth: str, kube):
    from portal.app import create_app
    from portal.app.settings import load_web_settings
    from portal.gpu.settings import load_gpu_settings
    from portal.settings import load_settings

    admin = {"ops": {"role": "admin", "sha256": hashlib.sha256(b"bench-admin-" + b"x" * 30).hexdigest()}}
    if auth == "kubernetes":
        web = load_web_settings(api_tokens=admin, session_secret="s" * 40, collector_enabled=False,
                                agent_auth="kubernetes", agent_service_account=f"jhub:{AGENT_ACCOUNT}")
    else:
        web = load_web_settings(api_tokens={"agents": {"role": "agent",
                                                       "sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}},
                                session_secret="s" * 40, collector_enabled=False)
    engine = make_engine(url, pool_size=4)
    clock = {"now": START}
    app = create_app(load_settings(database_url=url), web, engine=engine, clock=lambda: clock["now"],
                     gpu=load_gpu_settings(), kube_factory=kube.api_client if kube else None)
    return app, engine, clock


def _agent_tokens(kube) -> dict[int, str]:
    """Each node's agent pod and its projected token (audience jhub-portal), as the kubelet gets it."""
    tokens = {}
    for node in range(NODES):
        pod = kube.add({"kind": "Pod", "apiVersion": "v1", "metadata": {
            "name": f"{AGENT_ACCOUNT}-{node:03d}", "namespace": "jhub", "uid": f"uid-agent-{node:03d}"},
            "spec": {"nodeName": f"gpu{node:03d}", "serviceAccountName": AGENT_ACCOUNT}}, "pods")
        tokens[node] = kube.issue_token(namespace="jhub", service_account=AGENT_ACCOUNT, audiences=["jhub-portal"],
                                        pod=pod, expires_in=3600)
    return tokens


def _seed_sessions(engine) -> dict[tuple[int, int], str]:
    """Three GPUs in four are held: one pod per node holds GPUs 0-3, and one pod each GPUs 4 and 5."""
    pods, rows = {}, []
    for node in range(NODES):
        for first, count in ((0, 4), (4, 1), (5, 1)):
            name = f"jupyter-u{node:03d}-{first}"
            rows.append({"pod_uid": f"uid-{node:03d}-{first}", "user_name": f"u{node:03d}", "server_name": str(first),
                         "namespace": "jhub", "pod_name": name, "node_name": f"gpu{node:03d}", "image": "img",
                         "gpu_model": "NVIDIA-A100-SXM4-80GB", "cpu_request": 4.0, "memory_request_bytes": 16 * GIB,
                         "gpu_count": count, "rdma_count": 0, "started_at": START - timedelta(hours=1),
                         "ended_at": None, "end_source": None, "end_approximate": False,
                         "last_seen_at": START})
            for gpu in range(first, first + count):
                pods[(node, gpu)] = name
    with engine.begin() as conn:
        conn.execute(sa.insert(PodSession.__table__), rows)
    return pods


def _body(node: int, at: datetime, pods: dict, rng: random.Random) -> bytes:
    stamp = at.isoformat().replace("+00:00", "Z")
    samples = []
    for gpu in range(GPUS):
        pod = pods.get((node, gpu))
        samples.append({"at": stamp, "uuid": f"GPU-{node:04d}-{gpu:02d}-0000-0000-000000000000", "parent_uuid": None,
                        "model": "NVIDIA A100-SXM4-80GB", "util_percent": float(rng.choice((0, 0, 3, 45, 97))),
                        "memory_used_bytes": rng.randrange(80 * GIB), "memory_total_bytes": 80 * GIB,
                        "power_watts": round(rng.uniform(60, 400), 1), "temperature_c": float(rng.randrange(30, 80)),
                        "holders": [{"namespace": "jhub", "pod": pod, "container": "notebook"}] if pod else []})
    return json.dumps({"node": f"gpu{node:03d}", "batch_id": f"{node}-{stamp}", "samples": samples}).encode()


async def _post(app, body: bytes, token: str) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/gpu/samples", "raw_path": b"/api/gpu/samples", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"portal:29781"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {token}".encode()), (b"content-length", str(len(body)).encode())],
             "client": ("10.0.0.9", 40000), "server": ("portal", 29781)}
    inbox = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive():
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def _sizes(engine, prefix: str = "") -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text("SELECT pg_total_relation_size(:t)"), {"t": prefix + t}).scalar_one()
                for t in TABLES}


def _live_sizes(engine) -> dict[str, int]:
    """Bytes of the live rows with their indexes: copies made fresh, so no dead row versions are counted (a
    VACUUM cannot remove those while any other transaction on the server holds an older snapshot)."""
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(sa.text(f"CREATE TABLE live_{table} (LIKE {table} INCLUDING ALL)"))
            conn.execute(sa.text(f"INSERT INTO live_{table} SELECT * FROM {table}"))
    return _sizes(engine, "live_")


def run(url: str, minutes: int, auth: str) -> None:
    from tests.support.kubeapi import KubeApiServer

    migrate(url)
    kube = KubeApiServer() if auth == "kubernetes" else None
    tokens = _agent_tokens(kube) if kube else {node: TOKEN for node in range(NODES)}
    app, engine, clock = _app(url, auth, kube)
    pods = _seed_sessions(engine)
    rng = random.Random(7)
    rounds = minutes * 60 // INTERVAL
    before = _sizes(engine)
    cpu_seconds, latencies, errors = 0.0, [], 0
    periodic = {"passes": 0, "cpu": 0.0}
    gpu_settings = app.state.portal.gpu
    every = int(gpu_settings.reclaim_interval_seconds) // INTERVAL

    def periodic_work(now: datetime) -> None:
        """The portal's GPU worker (portal/gpu/reclaim.py run_gpu_worker): the idle-GPU pass every
        reclaim_interval_seconds, the retention prune hourly; its CPU counts as the portal's too."""
        cpu = time.process_time()
        if periodic["passes"] % (3600 // int(gpu_settings.reclaim_interval_seconds)) == 0:
            with engine.begin() as connection:
                prune_samples(connection, now=now, retention=timedelta(days=gpu_settings.sample_retention_days))
        reclaim_pass(engine, settings=gpu_settings, now=now, hub=None)
        periodic["cpu"] += time.process_time() - cpu
        periodic["passes"] += 1

    async def drive():
        nonlocal cpu_seconds, errors
        for step in range(rounds):
            at = START + timedelta(seconds=step * INTERVAL)
            clock["now"] = at + timedelta(seconds=1)
            if step and step % every == 0:
                periodic_work(clock["now"])
            for node in range(NODES):
                body = _body(node, at, pods, rng)  # the agent's work, not the portal's
                cpu, wall = time.process_time(), time.perf_counter()
                status = await _post(app, body, tokens[node])
                latencies.append(time.perf_counter() - wall)
                cpu_seconds += time.process_time() - cpu
                errors += status != 200

    wall_started = time.perf_counter()
    asyncio.run(drive())
    elapsed = time.perf_counter() - wall_started
    grown = {t: size - before[t] for t, size in _sizes(engine).items()}
    live = _live_sizes(engine)
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
    engine.dispose()
    reviews = kube.reviews if kube else 0
    if kube:
        kube.close()

    simulated = rounds * INTERVAL
    ingest_seconds = cpu_seconds
    cpu_seconds += periodic["cpu"]
    gpu_days = NODES * GPUS * simulated / 86400
    raw_per_gpu_day = live["gpu_samples"] / gpu_days  # grows with time, pruned after the retention
    hourly_per_gpu_day = 24 * live["gpu_hourly"] / counts["gpu_hourly"]  # one row per GPU and hour
    session_row = live["gpu_session_usage"] / counts["gpu_session_usage"]  # one row per session, kept
    kept_per_gpu_day = hourly_per_gpu_day + session_row * SESSIONS_PER_GPU_DAY
    cpu_percent = 100 * cpu_seconds / simulated
    p50 = statistics.median(latencies) * 1000
    print(f"{NODES} nodes x {GPUS} GPUs, a batch every {INTERVAL} s for {simulated / 60:.0f} simulated min: "
          f"{len(latencies)} batches, {counts['gpu_samples']} samples, {errors} errors, ran {elapsed:.1f} s")
    print(f"portal CPU, the batches and the GPU worker: {cpu_seconds:.1f} s over {simulated} s simulated "
          f"({cpu_percent:.2f} % of one core, {1000 * cpu_seconds / len(latencies):.2f} ms CPU per batch); per batch p50 {p50:.2f} ms, p95 "
          f"{statistics.quantiles(latencies, n=20)[-1] * 1000:.2f} ms")
    print(f"of which the batches {ingest_seconds:.1f} s, the GPU worker's {periodic['passes']} idle-GPU passes "
          f"(every {gpu_settings.reclaim_interval_seconds:.0f} s) with the hourly prune "
          f"{periodic['cpu']:.2f} s ({1000 * periodic['cpu'] / max(periodic['passes'], 1):.1f} ms CPU each)")
    print(f"agent credentials: {auth}" + (f", {reviews} TokenReviews for {len(latencies)} batches of {NODES} "
                                          f"node-bound tokens (cached {app.state.portal.web.agent_token_cache_seconds:.0f} s)"
                                          if kube else " (one shared agent-role API token)"))
    print(f"rows: {counts}; growth with dead row versions of the upserts (autovacuum reclaims them): "
          f"{ {t: f'{b / 1e6:.1f} MB' for t, b in grown.items()} }")
    print(f"live growth per GPU-day: raw samples {raw_per_gpu_day / 1e6:.2f} MB, pruned after the retention "
          f"(default 7 days: at most {7 * raw_per_gpu_day / 1e6:.1f} MB held per GPU); kept: hourly rollups "
          f"{hourly_per_gpu_day:.0f} bytes + session rollups {session_row:.0f} bytes per session "
          f"(x {SESSIONS_PER_GPU_DAY} session per GPU-day)")
    assert errors == 0, f"{errors} batches failed"
    print(f"gpu_ingest_cpu_percent: {cpu_percent:.2f} %")
    print(f"gpu_ingest_batch_p50: {p50:.2f} ms")
    print(f"gpu_ingest_db_bytes_per_gpu_day: {kept_per_gpu_day:.0f} bytes")  # long-run: what is kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="simulated minutes (default 60)")
    parser.add_argument("--auth", choices=("kubernetes", "api-token"), default="kubernetes",
                        help="the agents' credentials: node-bound ServiceAccount tokens (default, as deployed) or "
                             "one agent-role API token (a trial)")
    args = parser.parse_args()
    run_in_throwaway_database(lambda url: run(url, args.minutes, args.auth))


if __name__ == "__main__":
    main()
