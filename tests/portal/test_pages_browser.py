"""The pages in headless Chromium (Debian's chromium, driven by Playwright), signed in through the real
JupyterHub: what a user and an admin see and do. No token or secret ever appears in a page."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa
from portal_api_support import ADMIN_TOKEN, HUB_TOKEN, SESSION_SECRET
from portal_test_pods import user_pod

from portal.app.auth.cookies import SESSION_COOKIE
from tests.support.chromium import launched as chromium_browser

pytest_plugins = ["conftest_api"]


@pytest.fixture(scope="module")
def chromium():
    yield from chromium_browser()


@pytest.fixture
def site(hub_portal):
    portal = hub_portal
    now = portal.now
    portal.add_session("alice", start=now - timedelta(hours=10), end=now - timedelta(hours=6), uid="a1")
    portal.add_session("alice", start=now - timedelta(hours=2), uid="a2")
    portal.add_session("bob", start=now - timedelta(hours=3), end=now - timedelta(hours=1), gpus=2, uid="b1")
    portal.cluster.add(user_pod("alice", uid="a2", started="2026-05-20T02:00:00Z"))
    portal.cluster.add(user_pod("bob", uid="b2", started="2026-05-20T03:00:00Z"))
    return portal


class Visit:
    """One person's browser (a fresh profile each), remembering every page's HTML."""

    def __init__(self, browser, portal, hub, user: str) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.portal, self.hub, self.user, self.pages = portal, hub, user, []

    def sign_in(self, path: str = "/pods") -> None:
        self.page.goto(f"{self.portal.url}{path}")
        assert self.page.url.startswith(f"{self.hub.url}/hub/login")  # sent to the hub to sign in
        self.page.fill("#username_input", self.user)
        self.page.fill("#password_input", self.hub.password)
        self.page.click("#login_submit")
        self.page.wait_for_url(f"{self.portal.url}{path}*")
        self.keep()

    def open(self, path: str):
        response = self.page.goto(f"{self.portal.url}{path}")
        self.keep()
        return response

    def keep(self) -> None:
        self.pages.append(self.page.content())

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def rows(self, table: str) -> list[str]:
        return [row.inner_text() for row in self.page.query_selector_all(f"{table} tbody tr")]

    def session_cookie(self) -> dict:
        return next(c for c in self.context.cookies() if c["name"] == SESSION_COOKIE)


def assert_no_secrets(visit: Visit) -> None:
    secrets = [ADMIN_TOKEN, HUB_TOKEN, SESSION_SECRET, visit.hub.secret, visit.hub.tester,
               visit.session_cookie()["value"]]
    for html in visit.pages:
        for secret in secrets:
            assert secret not in html


def test_a_user_sees_their_own_pods_sessions_and_bill_in_local_time(chromium, site, hub):
    alice = Visit(chromium, site, hub, "alice")
    alice.sign_in("/sessions")
    assert alice.text("#who") == "alice" and "admin" not in alice.text("header")
    sessions = alice.rows("#sessions")
    assert len(sessions) == 2 and all(row.startswith("alice") for row in sessions)
    assert "2026-05-20 02:00:00 CST" in sessions[1]  # 18:00 UTC shown in Asia/Taipei
    assert "running" in sessions[0]
    assert "bob" not in alice.page.content()

    alice.open("/pods")
    assert [row.split("\t")[0] for row in alice.rows("#pods")] == ["alice"]
    assert alice.page.query_selector("form[action*='/delete']") is None  # users cannot delete

    alice.open("/billing?month=2026-05")
    [row] = alice.rows("#billing")
    assert row.split("\t")[:3] == ["alice", "6.00", "6.00"] and alice.text("#total") == "24.00"
    with alice.page.expect_download() as download:
        alice.page.click("#csv")
    csv_text = open(download.value.path()).read()
    assert csv_text.splitlines()[1].startswith("alice,6.0000,6.0000") and "bob" not in csv_text

    alice.open("/limits")
    assert alice.rows("#limits")[0].startswith("alice") and alice.page.query_selector("#limits input") is None
    assert alice.open("/audit").status == 403
    assert alice.session_cookie()["httpOnly"] and alice.session_cookie()["sameSite"] == "Lax"
    assert_no_secrets(alice)
    alice.context.close()


def test_an_admin_deletes_a_pod_only_after_typing_its_name(chromium, site, hub):
    admin = Visit(chromium, site, hub, "admin")
    admin.sign_in("/pods")
    assert "admin" in admin.text("header")
    assert {row.split("\t")[0] for row in admin.rows("#pods")} == {"alice", "bob"}
    bob_row = "tr[data-pod='jhub/jupyter-bob']"

    admin.page.fill(f"{bob_row} input[name=confirm]", "jupyter-alice")  # the wrong name
    admin.page.click(f"{bob_row} button")
    admin.keep()
    assert "confirmation does not match" in admin.text("#error")
    assert ("jhub", "jupyter-bob") in site.cluster.pods

    admin.open("/pods")
    admin.page.fill(f"{bob_row} input[name=confirm]", "jupyter-bob")
    admin.page.click(f"{bob_row} button")
    admin.page.wait_for_url(f"{site.url}/pods")
    admin.keep()
    assert admin.text(".flash") == "Deleted pod jhub/jupyter-bob of bob."
    assert site.cluster.deleted == [("jhub", "jupyter-bob", "b2")]
    assert [row.split("\t")[0] for row in admin.rows("#pods")] == ["alice"]

    admin.open("/audit")
    latest = admin.rows("#audit")[0]
    assert "admin\tpod.delete\tjhub/jupyter-bob\tok" in latest and "2026-05-20 12:00:00 CST" in latest
    assert_no_secrets(admin)
    admin.context.close()


def test_an_admin_edits_limits_and_removes_idle_storage(chromium, site, hub):
    idle = site.storage / "olduser"
    (idle / "data").mkdir(parents=True)
    stamp = (site.now - timedelta(days=200)).timestamp()
    for path in (idle / "data", idle):  # the newest change anywhere in the tree counts
        os.utime(path, (stamp, stamp))
    admin = Visit(chromium, site, hub, "admin")
    admin.sign_in("/limits")
    alice_row = "tr[data-user='alice']"
    admin.page.fill(f"{alice_row} input[name=cpu]", "8")
    admin.page.fill(f"{alice_row} input[name=gpuHoursMonthly]", "100")
    admin.page.click(f"{alice_row} button")
    admin.page.wait_for_url(f"{site.url}/limits")
    admin.keep()
    assert admin.text(".flash") == "Saved the limits of alice."
    assert admin.page.input_value(f"{alice_row} input[name=cpu]") == "8"
    assert "94.00" in admin.page.inner_text(alice_row)  # 100 GPU-hours less the 6 used this month
    with site.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT cpu_limit, gpu_limit FROM users WHERE name = 'alice'")).one() == (8.0, None)

    admin.page.fill(f"{alice_row} input[name=gpus]", "-3")
    admin.page.click(f"{alice_row} button")
    admin.keep()
    assert "limits for alice not saved" in admin.text("#error")

    admin.open("/storage?idle_days=100")
    row = "tr[data-dir='olduser']"
    assert "200" in admin.page.inner_text(row)
    admin.page.fill(f"{row} input[name=confirm]", "olduser")
    admin.page.check(f"{row} input[name=orphan]")  # olduser has no sessions: the admin confirms an orphan
    admin.page.click(f"{row} button")
    admin.page.wait_for_url(f"{site.url}/storage?idle_days=100")
    admin.keep()
    assert admin.text(".flash") == "Removed the storage directory olduser."
    assert not idle.exists()
    assert_no_secrets(admin)
    admin.context.close()


def test_signing_out_ends_the_portal_session(chromium, site, hub):
    alice = Visit(chromium, site, hub, "alice")
    alice.sign_in("/pods")
    alice.page.click("header form button")
    alice.page.wait_for_load_state()
    assert "signed out of the portal" in alice.page.content()
    assert not [c for c in alice.context.cookies() if c["name"] == SESSION_COOKIE]
    visited = []
    alice.page.on("request", lambda request: visited.append(request.url))
    alice.page.goto(f"{site.url}/pods")
    # signed out of the portal, so the next visit signs in through the hub again (which, still signed in
    # itself, lets her straight through: signing out of the portal is not signing out of JupyterHub)
    assert any(url.startswith(f"{hub.url}/hub/api/oauth2/authorize") for url in visited)
    assert alice.page.url == f"{site.url}/pods"
    alice.context.close()
