"""The overview, billing, limits and a user's own page in headless Chromium, signed in through the real
JupyterHub: charts are drawn by plotly.js (served by the portal, under its Content-Security-Policy) with
one point per value, every chart has its table, and the overview's figures are right for seeded data."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from test_pages_browser import Visit, assert_no_secrets, chromium  # noqa: F401 (chromium: a fixture)

from portal.rollups import rebuild_rollups

pytest_plugins = ["conftest_api"]


def node(name: str, gpus: int) -> dict:
    return {"metadata": {"name": name, "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}},
            "status": {"allocatable": {"nvidia.com/gpu": str(gpus), "cpu": "64"}}}


@pytest.fixture
def seeded(hub_portal):
    portal = hub_portal
    now = portal.now  # 2026-05-20 12:00 in Asia/Taipei
    portal.cluster.nodes = [node("gpu01", 8), node("gpu02", 4)]
    portal.add_session("alice", start=now - timedelta(hours=10), end=now - timedelta(hours=6), uid="a1")
    portal.add_session("bob", start=now - timedelta(hours=3), gpus=2, uid="b1")  # running: 2 GPUs requested
    portal.add_session("carol", start=now - timedelta(hours=30), end=now - timedelta(hours=5), uid="c1")
    portal.add_session("carol", start=now - timedelta(days=35), end=now - timedelta(days=34), uid="c0")  # April
    portal.add_session("dave", start=now - timedelta(hours=2), gpus=4, gpu_model="NVIDIA-H100-80GB-HBM3", uid="d1")
    with portal.engine.begin() as conn:
        conn.execute(sa.text("UPDATE pod_sessions SET node_name = 'gpu02' WHERE pod_uid = 'd1'"))
        rebuild_rollups(conn, portal.ctx.settings.zone)
    return portal


def set_limits(portal, user: str, **limits) -> None:
    from portal.app.services.limits import Limits, save

    body = {"cpu": None, "memoryGiB": None, "gpus": None, "gpuHoursMonthly": None, **limits}
    save(portal.ctx, user=user, limits=Limits.model_validate(body), actor="test")


def drawn(visit: Visit, chart_id: str) -> dict:
    """What plotly.js drew for a chart: its traces and their points, from the page's DOM."""
    visit.page.wait_for_selector(f"#{chart_id}[data-rendered='true']", timeout=20_000)
    return visit.page.evaluate("""(id) => {
        const root = document.getElementById(id);
        const traces = [...root.querySelectorAll('g.trace')];
        return {traces: traces.length,
                bars: root.querySelectorAll('g.trace.bars .point path').length,
                markers: root.querySelectorAll('g.trace.scatter .points path.point').length,
                lines: root.querySelectorAll('g.trace.scatter path.js-line').length,
                rows: document.querySelectorAll('#' + id + '-table tbody tr').length};
    }""", chart_id)


def cells(visit: Visit, table_id: str) -> list[list[str]]:
    """A table's cells as text, also when it sits in a closed <details> (the data behind a chart)."""
    return visit.page.evaluate("""(id) => [...document.querySelectorAll('#' + id + ' tbody tr')].map(
        (row) => [...row.cells].map((cell) => cell.textContent.trim()))""", table_id)


def watch_console(visit: Visit) -> list[str]:
    problems: list[str] = []
    visit.page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    visit.page.on("pageerror", lambda e: problems.append(str(e)))
    visit.page.add_init_script("""document.addEventListener('securitypolicyviolation', (e) => console.error(
        'CSP ' + e.violatedDirective + ' ' + e.sample + ' at ' + e.sourceFile + ':' + e.lineNumber));""")
    return problems


def test_the_overview_is_right_for_seeded_data_and_draws_its_charts(chromium, seeded, hub):  # noqa: F811
    set_limits(seeded, "carol", gpuHoursMonthly=10.0)
    admin = Visit(chromium, seeded, hub, "admin")
    problems = watch_console(admin)
    admin.sign_in("/overview")
    assert admin.text("#gpus-in-use").startswith("6 / 12")  # bob's 2 and dave's 4, of 8 + 4 allocatable
    nodes = {row.split("\t")[0]: row.split("\t")[1:4] for row in admin.rows("#nodes")}
    assert nodes == {"gpu01": ["8", "2", "no agent data"], "gpu02": ["4", "4", "no agent data"]}
    [over] = admin.rows("#over-budget")
    carol = over.split("\t")
    # carol: 25 GPU-hours this month against 10 -> 15 over, at 4 USD a GPU-hour 60 USD
    assert carol[0] == "carol" and carol[1:4] == ["25.00", "10", "15.00"] and carol[6] == "60.00"
    assert admin.page.query_selector("#over-budget tr.over[data-user='carol']") is not None
    # this month: alice 4 h, bob 3 h x 2, carol 25 h, dave 2 h x 4 = 43 GPU-hours, 172 USD; April: carol 24 h
    assert admin.text("#cost-month").startswith("172.00 USD") and "(96.00 in 2026-04)" in admin.text("#cost-month")
    assert admin.text("#gpu-hours-month").startswith("43.0")

    months = drawn(admin, "chart-months")
    assert months["traces"] == 2 and months["bars"] == 12 and months["markers"] == 12 and months["rows"] == 12
    top = drawn(admin, "chart-top-users")
    assert top["bars"] == 4 and top["rows"] == 4
    assert cells(admin, "chart-top-users-table")[0][:2] == ["carol", "100.00"]
    models = drawn(admin, "chart-models")
    assert models["bars"] == 2 and {r[0] for r in cells(admin, "chart-models-table")} == {
        "NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"}
    allocation = drawn(admin, "chart-allocation")
    assert allocation["traces"] == 2 and allocation["lines"] == 2 and allocation["rows"] == 7 * 24
    last = cells(admin, "chart-allocation-table")[-1]
    assert last[1:] == ["2.00", "4.00"]  # the last hour: bob's 2 GPUs on gpu01, dave's 4 on gpu02
    assert problems == []  # plotly.js ran under the CSP: nothing refused, nothing thrown
    assert_no_secrets(admin)
    admin.context.close()


def test_billing_groups_sorts_pages_by_month_and_draws_the_days(chromium, seeded, hub):  # noqa: F811
    admin = Visit(chromium, seeded, hub, "admin")
    admin.sign_in("/billing")
    assert "2026-05-01 00:00:00 CST" in admin.text("#period")  # the current month by default
    assert admin.text("#total-gpu-hours") == "43.00" and admin.text("#total") == "172.00"
    admin.page.click("#billing th a[data-column='total_cost']")
    admin.page.click("#billing th a[data-column='total_cost']")  # again: descending
    admin.keep()
    assert [r.split("\t")[0] for r in admin.rows("#billing")] == ["carol", "dave", "bob", "alice"]
    admin.page.select_option("#group-by", "gpu_model")
    admin.page.click("form.filters button")
    admin.keep()
    assert [r.split("\t")[:3] for r in admin.rows("#billing")] == [
        ["NVIDIA-A100-SXM4-80GB", "32.00", "35.00"], ["NVIDIA-H100-80GB-HBM3", "2.00", "8.00"]]
    days = drawn(admin, "chart-days")
    assert days["bars"] == 31 and days["markers"] == 31 and days["rows"] == 31
    with admin.page.expect_download() as download:
        admin.page.click("#csv")
    assert download.value.suggested_filename == "billing-20260501-20260531-by-gpu-model.csv"
    data = open(download.value.path(), "rb").read()
    assert data.startswith(b"\xef\xbb\xbfgpu_model,") and b"NVIDIA-H100-80GB-HBM3,2.0000,8.0000" in data
    admin.page.click("#previous-month")
    admin.keep()
    assert "2026-04-01 00:00:00 CST" in admin.text("#period")
    assert [r.split("\t")[:3] for r in admin.rows("#billing")] == [["NVIDIA-A100-SXM4-80GB", "24.00", "24.00"]]
    admin.page.click("#next-month")
    assert "2026-05-01 00:00:00 CST" in admin.text("#period")
    admin.context.close()


def test_limits_mark_defaults_highlight_overruns_search_and_reset(chromium, seeded, hub):  # noqa: F811
    set_limits(seeded, "carol", gpuHoursMonthly=10.0, budgetMonthly=50.0)
    admin = Visit(chromium, seeded, hub, "admin")
    admin.sign_in("/limits")
    carol = "tr[data-user='carol']"
    assert "over" in admin.page.get_attribute(carol, "class")
    # 15 GPU-hours past 10 cost 60 USD (4 a GPU-hour), more than the 50 past the money budget (100 spent of 50)
    assert "15.00 GPU-h\n60.00 USD" in admin.page.inner_text(f"{carol} td.overrun")
    assert "default" in admin.page.get_attribute("tr[data-user='alice']", "class")
    assert admin.page.inner_text("tr[data-user='alice'] .badge") == "default"
    admin.page.fill("#search input[name=q]", "car")
    admin.page.click("#search button")
    admin.keep()
    assert [r.split("\t")[0] for r in admin.rows("#limits")] == ["carol"]
    admin.page.click(f"{carol} form.reset button")
    admin.page.wait_for_url(f"{seeded.url}/limits")
    admin.keep()
    assert admin.text(".flash") == "carol has the default limits again."
    assert "default" in admin.page.get_attribute(carol, "class")
    assert "over" not in admin.page.get_attribute(carol, "class")
    admin.context.close()


def test_a_user_sees_their_own_page_with_usage_budget_and_chart(chromium, seeded, hub):  # noqa: F811
    set_limits(seeded, "carol", gpuHoursMonthly=10.0)
    carol = Visit(chromium, seeded, hub, "carol")
    carol.sign_in("/me")
    assert carol.text("#whose") == "carol" and carol.text("#my-gpu-hours").startswith("25.00")
    assert carol.text("#my-cost").startswith("100.00 USD")
    assert "over by 15.00 GPU-hours" in carol.text("#my-budget")
    days = drawn(carol, "chart-days")
    assert days["bars"] == 30 and days["rows"] == 30
    assert len(carol.rows("#my-sessions")) == 2
    assert carol.open("/users/alice").status == 403 and carol.open("/overview").status == 403
    carol.context.close()
