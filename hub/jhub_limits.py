"""Per-user limits from the usage portal: fetch them, and judge a server request against them. `portal_get`
is the hub's one client of the portal's API (limits here, notices in jhub_notices.py).

GET {url}/api/limits/{username} with `Authorization: Bearer <token>` answers (among other keys)
    {"user": "alice",
     "limits": {"cpu": 16.0, "memoryGiB": 64.0, "gpus": 2, "gpuHoursMonthly": 100.0, "budgetMonthly": 500.0},
     "used": {"gpuHoursThisMonth": 12.5, "costThisMonth": 512.3}, "remaining": {"gpuHours": 87.5, "budget": 0.0},
     "currency": "USD", "pricesPerHour": {"gpu": 4.0, "cpuCore": 0.0, "memoryGiB": 0.0}}
where null means unlimited. CPU, memory and GPU limits cap the sum over all of the user's running servers.
The budgets refuse a new server once used up: the GPU-hour budget one with GPUs, the money budget one that adds
cost at today's prices (GPU servers; CPU servers too where CPU cores or memory are priced). A portal that sends
no `pricesPerHour` is taken to price GPUs only (the portal's defaults).
"""

import json
import logging
import os
from decimal import Decimal
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from jhub_capacity import Request
from jhub_quantity import GIB

log = logging.getLogger("jhub.limits")


class PortalUnavailable(Exception):
    """The portal gave no usable answer (down, slow, error status, bad JSON, missing token)."""


async def portal_get(path: str, portal: dict, *, timeout: float | None = None):
    """GET {portal.url}{path} with the hub's portal token: (url, the decoded JSON answer). Raises PortalUnavailable
    with a reason that holds no secret. `timeout` (seconds) defaults to portal.timeoutSeconds."""
    token = os.environ.get(portal["tokenEnv"], "")
    if not token:
        raise PortalUnavailable(f"environment variable {portal['tokenEnv']} (the portal token) is empty")
    url = f"{portal['url'].rstrip('/')}{path}"
    timeout = portal["timeoutSeconds"] if timeout is None else timeout
    request = HTTPRequest(
        url,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        connect_timeout=timeout,
        request_timeout=timeout,
        follow_redirects=False,
        validate_cert=portal["verifyTls"],
        ca_certs=portal["caFile"] or None,
    )
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except Exception as exc:  # connection refused, DNS, TLS: all mean "no answer"
        raise PortalUnavailable(f"{url}: {type(exc).__name__}: {exc}") from None
    if response.code != 200:
        reason = "timed out" if response.code == 599 and "imeout" in str(response.error) else f"HTTP {response.code}"
        raise PortalUnavailable(f"{url}: {reason}")
    try:
        return url, json.loads(response.body)
    except ValueError as exc:
        raise PortalUnavailable(f"{url}: unreadable answer ({exc})") from None


async def fetch_limits(username: str, portal: dict) -> dict:
    """The portal's answer for `username`; raises PortalUnavailable with a reason that holds no secret."""
    url, answer = await portal_get(f"/api/limits/{quote(username, safe='')}", portal)
    if not (isinstance(answer, dict) and isinstance(answer.get("limits"), dict)):
        raise PortalUnavailable(f"{url}: unreadable answer (no 'limits' object)")
    return answer


def _num(value):
    return None if value is None else Decimal(str(value))


def _fmt(value) -> str:
    text = f"{Decimal(str(value)).quantize(Decimal('0.1')):f}"
    return text[:-2] if text.endswith(".0") else text


def refusal(answer: dict, request: Request, others: Request) -> str | None:
    """None when `request` (this server) plus `others` (the user's other running servers) is within the
    limits; else a message naming the limit and what the user has left."""
    limits, remaining = answer.get("limits") or {}, answer.get("remaining") or {}
    checks = (
        ("CPU", "cores", _num(limits.get("cpu")), others.cpu, request.cpu),
        ("memory", "GiB", _num(limits.get("memoryGiB")), others.memory / GIB, request.memory / GIB),
        ("GPU", "GPUs", _num(limits.get("gpus")), Decimal(others.gpus), Decimal(request.gpus)),
    )
    for name, unit, limit, in_use, asked in checks:
        in_use, asked = Decimal(str(in_use)), Decimal(str(asked))
        if limit is not None and in_use + asked > limit:
            left = max(limit - in_use, Decimal(0))
            return (
                f"{name} limit reached: you may use {_fmt(limit)} {unit} across your running servers; "
                f"{_fmt(in_use)} are in use, so {_fmt(left)} {unit} are left, and this server asks for {_fmt(asked)}."
            )
    hours_left = _num(remaining.get("gpuHours"))
    if request.gpus and hours_left is not None and hours_left <= 0:
        budget = _num(limits.get("gpuHoursMonthly"))
        used = _num((answer.get("used") or {}).get("gpuHoursThisMonth"))
        of = f" of {_fmt(budget)}" if budget is not None else ""
        spent = f"{_fmt(used)}{of} GPU-hours used this month" if used is not None else "GPU-hours used up"
        return f"GPU-hour budget used up: {spent}, 0 left. Start a CPU-only server, or ask an admin."
    return _money_refusal(answer, request)


def _money(value) -> str:
    return f"{Decimal(str(value)).quantize(Decimal('0.01')):f}"


def _costs(request: Request, prices) -> bool:
    """Whether `request` adds cost at `prices` (the answer's pricesPerHour; None: GPUs priced, nothing else)."""
    if not isinstance(prices, dict):
        return request.gpus > 0
    rate = (Decimal(request.gpus) * (_num(prices.get("gpu")) or 0)
            + Decimal(str(request.cpu)) * (_num(prices.get("cpuCore")) or 0)
            + Decimal(str(request.memory)) / GIB * (_num(prices.get("memoryGiB")) or 0))
    return rate > 0


def _money_refusal(answer: dict, request: Request) -> str | None:
    left = _num((answer.get("remaining") or {}).get("budget"))
    prices = answer.get("pricesPerHour")
    if left is None or left > 0 or not _costs(request, prices):
        return None
    budget = _num((answer.get("limits") or {}).get("budgetMonthly"))
    cost = _num((answer.get("used") or {}).get("costThisMonth"))
    currency = str(answer.get("currency") or "").strip()
    unit = f" {currency}" if currency else ""
    of = f" of {_money(budget)}" if budget is not None else ""
    spent = f"{_money(cost)}{of}{unit} spent this month" if cost is not None else "spent"
    cpu_free = not _costs(Request(cpu=Decimal(1), memory=Decimal(GIB)), prices)
    advice = ("Start a CPU-only server, or ask an admin." if request.gpus and cpu_free
              else "Every server costs money at today's prices: ask an admin to raise your budget.")
    return f"Money budget used up: {spent}, 0{unit} left. {advice}"
