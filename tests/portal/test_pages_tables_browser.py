"""Billing by namespace and by every sort column, the limits pages a page at a time, the rates page and the
error page of an unknown path, in headless Chromium signed in through the real JupyterHub, on seeded data."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from test_pages_browser import Visit, assert_no_secrets, chromium  # noqa: F401 (chromium: a fixture)

from portal.app.pages.usage import SORTS
from portal.billing.rates import SINCE_ALWAYS, apply_configured_rates, set_rate
from portal.rollups import rebuild_rollups

pytest_plugins = ["conftest_api"]

H100 = "NVIDIA-H100-80GB-HBM3"


def price(portal, model: str, gpu: float | None, cpu: float | None, memory: float | None,
          since: date = SINCE_ALWAYS) -> None:
    """Prices per hour of ``model`` ("" = the default) from ``since`` on, as an admin's change writes them."""
    with portal.engine.begin() as conn:
        set_rate(conn, gpu_model=model, prices={"gpu_hour": gpu, "cpu_core_hour": cpu, "memory_gib_hour": memory},
                 effective_from=since, actor="test", now=portal.now)


def in_namespace(portal, uid: str, namespace: str, pod: str) -> None:
    with portal.engine.begin() as conn:
        conn.execute(sa.text("UPDATE pod_sessions SET namespace = :ns, pod_name = :pod WHERE pod_uid = :uid"),
                     {"ns": namespace, "pod": pod, "uid": uid})


def cells(visit: Visit, table: str) -> list[list[str]]:
    return [row.split("\t") for row in visit.rows(table)]


def test_billing_by_namespace_reads_the_sessions_of_the_hub_and_a_users_mpi_namespace(
        chromium, hub_portal, hub):  # noqa: F811
    portal = hub_portal
    now = portal.now  # 2026-05-20 12:00 in Asia/Taipei
    price(portal, "", 4.0, 0.5, 0.1)
    # the hub's namespace: alice 4 h, alice 6 h of a session that began in April (18:00 to 06:00), carol
    # running for 3 h on 2 GPUs; all with 4 cores and 16 GiB
    portal.add_session("alice", start=now - timedelta(hours=10), end=now - timedelta(hours=6), uid="a1")
    portal.add_session("alice", start=now - timedelta(days=19, hours=18), end=now - timedelta(days=19, hours=6),
                       uid="a0")
    portal.add_session("carol", start=now - timedelta(hours=3), gpus=2, uid="c1")
    # carol's MPI job in her own namespace, two whole days (so the per-user report reads daily rollups for
    # them): a worker on 4 GPUs with 16 cores and 64 GiB, a launcher without GPUs on 1 core and 2 GiB
    job = {"start": now - timedelta(days=10), "end": now - timedelta(days=8)}
    portal.add_session("carol", **job, gpus=4, cpu=16, memory_gib=64, uid="w1")
    portal.add_session("carol", **job, gpus=0, cpu=1, memory_gib=2, uid="l1")
    portal.add_session("carol", start=now - timedelta(days=35), end=now - timedelta(days=34), uid="w0")  # April
    for uid, pod in (("w1", "train-worker-0"), ("l1", "train-launcher"), ("w0", "train-worker-0")):
        in_namespace(portal, uid, "jhub-carol", pod)
    with portal.engine.begin() as conn:
        rebuild_rollups(conn, portal.ctx.settings.zone)

    admin = Visit(chromium, portal, hub, "admin")
    admin.sign_in("/billing")
    # by user (from the rollups and the partial days): alice 10 h, carol 3 h + 2 x 48 h; the same total
    assert [r[:3] for r in cells(admin, "#billing")] == [["alice", "10.00", "10.00"], ["carol", "99.00", "198.00"]]
    assert admin.text("#total") == "1603.60" and admin.text("#total-gpu-hours") == "208.00"
    admin.page.select_option("#group-by", "namespace")
    admin.page.click("form.filters button")
    admin.page.wait_for_selector("#billing th a[data-column='key']:text('Namespace')")
    admin.keep()
    # jhub: 13 h, 16 GPU-h, 52 core-h, 208 GiB-h -> 64 + 26 + 20.80; jhub-carol: 96 h, 192 GPU-h,
    # 48 x 17 core-h, 48 x 66 GiB-h -> 768 + 408 + 316.80
    assert cells(admin, "#billing") == [
        ["jhub", "13.00", "16.00", "52.00", "208.00", "64.00", "26.00", "20.80", "110.80"],
        ["jhub-carol", "96.00", "192.00", "816.00", "3168.00", "768.00", "408.00", "316.80", "1492.80"]]
    assert admin.text("#total") == "1603.60" and admin.text("#total-gpu-hours") == "208.00"
    with admin.page.expect_download() as download:
        admin.page.click("#csv")
    assert download.value.suggested_filename == "billing-20260501-20260531-by-namespace.csv"
    assert open(download.value.path(), "rb").read().decode("utf-8") == (
        "\ufeffnamespace,runtime_hours,gpu_hours,cpu_core_hours,memory_gib_hours,gpu_cost,cpu_cost,memory_cost,"
        "total_cost,currency\n"
        "jhub,13.0000,16.0000,52.0000,208.0000,64.00,26.00,20.80,110.80,USD\n"
        "jhub-carol,96.0000,192.0000,816.0000,3168.0000,768.00,408.00,316.80,1492.80,USD\n")
    admin.page.click("#billing th a[data-column='total_cost']")  # the sort links keep the grouping
    admin.page.wait_for_selector("#billing[data-sort='total_cost'][data-order='asc']")
    admin.page.click("#billing th a[data-column='total_cost']")
    admin.page.wait_for_selector("#billing[data-sort='total_cost'][data-order='desc']")
    assert [r[0] for r in cells(admin, "#billing")] == ["jhub-carol", "jhub"]
    admin.page.click("#previous-month")  # April: the job's one day in carol's namespace (1 GPU, 4 cores, 16 GiB)
    admin.page.wait_for_selector("#period:has-text('2026-04-01 00:00:00 CST')")
    assert cells(admin, "#billing") == [
        ["jhub", "6.00", "6.00", "24.00", "96.00", "24.00", "12.00", "9.60", "45.60"],
        ["jhub-carol", "24.00", "24.00", "96.00", "384.00", "96.00", "48.00", "38.40", "182.40"]]
    assert_no_secrets(admin)
    admin.context.close()

    carol = Visit(chromium, portal, hub, "carol")  # a user grouping by namespace sees only her own sessions
    carol.sign_in("/billing?group_by=namespace")
    assert cells(carol, "#billing") == [
        ["jhub", "3.00", "6.00", "12.00", "48.00", "24.00", "6.00", "4.80", "34.80"],
        ["jhub-carol", "96.00", "192.00", "816.00", "3168.00", "768.00", "408.00", "316.80", "1492.80"]]
    carol.context.close()


# Each user's one session today (closed): hours, GPUs (A100 at the default prices, or H100), cores, GiB.
SORT_USERS = {"ann": (6, 2, 1, 8, "NVIDIA-A100-SXM4-80GB"), "ben": (4, 2, 2, 32, H100),
              "cat": (9, 1, 2, 8, "NVIDIA-A100-SXM4-80GB"), "dan": (2, 2, 2, 4, H100)}
# hours, GPU-h, core-h, GiB-h, then GPU, CPU, memory and total cost (default 4, 0.5, 0.1; H100 10, 2, 1)
SORT_ROWS = {"ann": ["6.00", "12.00", "6.00", "48.00", "48.00", "3.00", "4.80", "55.80"],
             "ben": ["4.00", "8.00", "8.00", "128.00", "80.00", "16.00", "128.00", "224.00"],
             "cat": ["9.00", "9.00", "18.00", "72.00", "36.00", "9.00", "7.20", "52.20"],
             "dan": ["2.00", "4.00", "4.00", "8.00", "40.00", "8.00", "8.00", "56.00"]}
# ascending, by each sort key: every key orders the four differently
SORT_ORDERS = {"key": ["ann", "ben", "cat", "dan"], "runtime_hours": ["dan", "ben", "ann", "cat"],
               "gpu_hours": ["dan", "ben", "cat", "ann"], "cpu_core_hours": ["dan", "ann", "ben", "cat"],
               "memory_gib_hours": ["dan", "ann", "cat", "ben"], "gpu_cost": ["cat", "dan", "ann", "ben"],
               "cpu_cost": ["ann", "dan", "cat", "ben"], "memory_cost": ["ann", "cat", "dan", "ben"],
               "total_cost": ["cat", "ann", "dan", "ben"]}


def test_billing_sorts_by_every_column_both_ways(chromium, hub_portal, hub):  # noqa: F811
    assert set(SORT_ORDERS) == set(SORTS)  # a new sort key needs its order here
    portal = hub_portal
    price(portal, "", 4.0, 0.5, 0.1)
    price(portal, H100, 10.0, 2.0, 1.0)
    for user, (hours, gpus, cpu, memory, model) in SORT_USERS.items():
        portal.add_session(user, start=portal.now - timedelta(hours=hours + 1), end=portal.now - timedelta(hours=1),
                           gpus=gpus, cpu=cpu, memory_gib=memory, gpu_model=model)
    admin = Visit(chromium, portal, hub, "admin")
    admin.sign_in("/billing")
    assert {r[0]: r[1:] for r in cells(admin, "#billing")} == SORT_ROWS
    assert [r[0] for r in cells(admin, "#billing")] == SORT_ORDERS["key"]  # by name, ascending, by default
    for column, ascending in SORT_ORDERS.items():
        # a column's link sorts ascending, and again descending (the name: descending first, being the sort)
        for order in (("desc", "asc") if column == "key" else ("asc", "desc")):
            admin.page.click(f"#billing th a[data-column='{column}']")
            admin.page.wait_for_selector(f"#billing[data-sort='{column}'][data-order='{order}']")
            expected = ascending if order == "asc" else ascending[::-1]
            assert [r[0] for r in cells(admin, "#billing")] == expected, (column, order)
            marked = admin.page.get_attribute("#billing th[aria-sort] a", "data-column")
            assert marked == column and admin.page.get_attribute("#billing th[aria-sort]", "aria-sort") == (
                "ascending" if order == "asc" else "descending")
    admin.context.close()


def test_limits_pages_fifty_users_at_a_time_and_search_narrows_across_pages(chromium, hub_portal, hub):  # noqa: F811
    portal = hub_portal
    users = ["other1", "other2", *(f"user{i:02d}" for i in range(65))]  # 67 known users, by name
    for user in users:
        portal.add_session(user, start=portal.now - timedelta(hours=2), end=portal.now - timedelta(hours=1))
    admin = Visit(chromium, portal, hub, "admin")
    admin.sign_in("/limits")

    def names() -> list[str]:
        return [r[0].split()[0] for r in cells(admin, "#limits")]  # the name, without its "default" badge

    def pager() -> tuple[bool, bool]:
        return (admin.page.query_selector("#previous-page") is not None,
                admin.page.query_selector("#next-page") is not None)

    assert admin.text("#count") == "67 users, page 1 of 2." and names() == users[:50] and pager() == (False, True)
    admin.page.click("#next-page")
    admin.page.wait_for_selector("#count:text('page 2 of 2')")
    assert names() == users[50:] and len(names()) == 17 and pager() == (True, False)
    admin.page.click("#previous-page")
    admin.page.wait_for_selector("#count:text('page 1 of 2')")
    assert names() == users[:50]
    admin.open("/limits?page=9")  # past the last page: the last page
    assert admin.text("#count") == "67 users, page 2 of 2." and names() == users[50:]

    admin.page.fill("#search input[name=q]", "7")  # user07 ... user47 on page 1, user57 on page 2
    admin.page.click("#search button")
    admin.page.wait_for_selector("#count:text('6 users.')")
    assert names() == ["user07", "user17", "user27", "user37", "user47", "user57"] and pager() == (False, False)
    admin.page.fill("#search input[name=q]", "USER")  # case-insensitive; the next page keeps the search
    admin.page.click("#search button")
    admin.page.wait_for_selector("#count:text('65 users, page 1 of 2.')")
    assert names() == users[2:52]
    admin.page.click("#next-page")
    admin.page.wait_for_selector("#count:text('65 users, page 2 of 2.')")
    assert names() == users[52:] and admin.page.input_value("#search input[name=q]") == "USER"
    admin.context.close()


def test_the_rates_page_shows_the_configured_rates_and_an_unknown_page_is_an_html_error(
        chromium, hub_portal, hub):  # noqa: F811
    portal = hub_portal
    configured = portal.ctx.settings.model_copy(update={
        "gpu_rate_per_hour": 4.5, "cpu_rate_per_core_hour": 0.25, "memory_rate_per_gib_hour": 0.05,
        "gpu_model_rates": {H100: 9.0}})
    with portal.engine.begin() as conn:
        assert apply_configured_rates(conn, configured, now=portal.now) == ["", H100]  # as the collector does
    price(portal, H100, 12.0, None, None, since=date(2026, 6, 1))  # an admin's change, scheduled
    alice = Visit(chromium, portal, hub, "alice")
    alice.sign_in("/rates")
    assert "USD" in alice.text("main") and "(2026-05-20)" in alice.text("main")
    assert cells(alice, "#rates") == [["default", "4.5", "0.25", "0.05"], [H100, "9", "0.25", "0.05"]]
    assert cells(alice, "#rate-history") == [
        ["2026-06-01 (scheduled)", H100, "12", "default", "default", "test"],
        ["1970-01-01", "default", "4.5", "0.25", "0.05", "system:settings"],
        ["1970-01-01", H100, "9", "default", "default", "system:settings"]]
    assert alice.page.query_selector("#rate-change") is None  # only admins change prices

    missing = alice.open("/no-such-page")
    assert missing.status == 404 and missing.headers["content-type"].startswith("text/html")
    assert alice.text("h1") == "Something went wrong (404)" and alice.text("#error")
    assert alice.page.query_selector("a[href='/pods']") is not None
    assert_no_secrets(alice)
    alice.context.close()
