"""The admin's overview: GPUs in use of total and per node, idle-GPU sessions, users over budget, this
month's cost against last month's, and the series its charts draw.

GPUs per node: allocatable from the Kubernetes nodes (when the portal may read them), requested by the
open sessions (the collector's record), utilised from the GPU agent's samples (when it reports): physical
GPUs busy, a GPU in MIG mode while any of its slices is (portal/gpu/queries.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal.app.context import PortalContext
from portal.app.services import gpu_usage, shared_views
from portal.app.ranges import parse_month
from portal.app.services.errors import KubeUnavailable
from portal.app.services.series import daily, gpus_allocated, monthly
from portal.billing.limits import limits_from, session_user_names
from portal.billing.periods import month_bounds, month_of
from portal.billing.rates import RateDefaults
from portal.billing.report import UsageRow
from portal.models import PodSession

log = logging.getLogger(__name__)
sessions = PodSession.__table__
ALLOCATION_DAYS = 7
ALLOCATION_BUCKET_SECONDS = 3600
MONTHS = 12
TOP_USERS = 10


@dataclass
class NodeGpus:
    node: str
    allocatable: int | None  # None: not known (nodes cannot be read)
    requested: int
    utilised: int | None = None  # GPUs busy now, from the agent
    util_percent: float | None = None  # their average utilisation


@dataclass
class Overview:
    month: str
    previous_month: str
    cost: float
    previous_cost: float
    gpu_hours: float
    previous_gpu_hours: float
    nodes: list[NodeGpus]
    over_budget: list[dict]
    idle_sessions: list
    by_user: list[UsageRow]
    by_model: list[UsageRow]
    months: list[tuple[str, float, float]]
    allocation_start: datetime
    allocation: dict[str, list[float]]
    utilisation: dict[str, list[float]] = field(default_factory=dict)
    nodes_problem: str | None = None
    agent: bool = False  # the GPU agent's data is available

    @property
    def gpus_total(self) -> int | None:
        known = [n.allocatable for n in self.nodes if n.allocatable is not None]
        return sum(known) if known else None

    @property
    def gpus_requested(self) -> int:
        return sum(n.requested for n in self.nodes)


def _previous(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _total(rows: list[UsageRow]) -> tuple[float, float]:
    return sum(r.total_cost for r in rows), sum(r.gpu_hours for r in rows)


def build(ctx: PortalContext) -> Overview:
    now, zone = ctx.clock(), ctx.settings.zone
    defaults = RateDefaults.from_settings(ctx.settings)
    year, month = month_of(now, zone)
    prev = _previous(year, month)
    _, end = month_bounds(year, month, zone)
    first_month = (year - 1, month + 1) if month < 12 else (year, 1)
    chart_start, _ = month_bounds(*first_month, zone)
    alloc_start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=ALLOCATION_DAYS)
    # the same reports as the billing page's of this month (by user, by model) and last month (by model)
    this_month = shared_views.this_month(ctx)
    by_user = list(shared_views.billing_rows(ctx, this_month, None))
    by_model = list(shared_views.billing_rows(ctx, this_month, None, "gpu_model"))
    previous = list(shared_views.billing_rows(ctx, parse_month(f"{prev[0]:04d}-{prev[1]:02d}", zone), None,
                                              "gpu_model"))
    limit_rows = shared_views.own_limit_rows(ctx)
    with ctx.engine.connect() as connection:
        days = daily(connection, first=chart_start.astimezone(zone).date(), last=end.astimezone(zone).date(),
                     zone=zone, now=now, defaults=defaults)
        known = sorted(set(limit_rows) | session_user_names(connection))
        requested = dict(connection.execute(
            sa.select(sessions.c.node_name, sa.func.sum(sessions.c.gpu_count))
            .where(sessions.c.ended_at.is_(None), sessions.c.gpu_count > 0).group_by(sessions.c.node_name)).all())
        allocation = gpus_allocated(connection, start=alloc_start, end=now, bucket_seconds=ALLOCATION_BUCKET_SECONDS)
        agent = gpu_usage.node_view(connection, start=alloc_start, end=now, bucket_seconds=ALLOCATION_BUCKET_SECONDS,
                                    settings=ctx.gpu)
    allocatable, problem = {}, None
    try:
        allocatable = ctx.live_pods().node_gpus()
    except KubeUnavailable as exc:
        problem = f"allocatable GPUs unknown: Kubernetes API unavailable ({exc})"
    names = sorted(set(allocatable) | {n for n in requested if n} | set(agent.now))
    nodes = []
    for name in names:
        busy = agent.now.get(name)
        total = allocatable[name] if name in allocatable else agent.totals.get(name)
        nodes.append(NodeGpus(name, total, int(requested.get(name) or 0),
                              None if busy is None else busy[0], None if busy is None else busy[1]))
    used = {row.user_name: row for row in by_user}
    limits = [limits_from(name, limit_rows.get(name), ctx.settings, used.get(name)) for name in known]
    over = [u for u in limits if u["over"]["gpuHours"] > 0 or u["over"]["cost"] > 0]
    over.sort(key=lambda u: (-u["over"]["cost"], -u["over"]["gpuHours"], u["user"]))
    cost, hours = _total(by_user)
    previous_cost, previous_hours = _total(previous)
    top = sorted(by_user, key=lambda r: (-r.total_cost, -r.gpu_hours, r.user_name))[:TOP_USERS]
    return Overview(
        month=f"{year:04d}-{month:02d}", previous_month=f"{prev[0]:04d}-{prev[1]:02d}", cost=cost,
        previous_cost=previous_cost, gpu_hours=hours, previous_gpu_hours=previous_hours, nodes=nodes,
        over_budget=over, idle_sessions=agent.idle, by_user=top,
        by_model=sorted(by_model, key=lambda r: (-r.total_cost, r.user_name)), months=monthly(days),
        allocation_start=alloc_start, allocation=allocation, utilisation=agent.series, nodes_problem=problem,
        agent=agent.available)
