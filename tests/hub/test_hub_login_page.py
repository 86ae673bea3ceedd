"""The branded login page, rendered by a real jupyterhub with our templates and opened in headless Chromium."""

import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from hubtest_configs import jhub_cfg
from hubtest_hub import Hub, header
from hubtest_png import read_pixels, write_png

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed (apt-get install -y chromium)")

MAGENTA = (255, 0, 255)
TITLE, BUTTON = "Acme GPU Lab", "Enter the lab"


class Page(HTMLParser):
    def __init__(self, html):
        super().__init__()
        self.title, self.elements, self._in_title = "", {}, False
        self.text = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._in_title = tag == "title"
        if attrs.get("id"):
            self.elements[attrs["id"]] = {"tag": tag, **attrs}
        if tag == "link" and attrs.get("rel") == "icon":
            self.elements["favicon"] = attrs
        if tag == "img" and attrs.get("class") == "jpy-logo":
            self.elements["logo"] = attrs

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self.text.append(data)

    def handle_endtag(self, tag):
        self._in_title = False


def chromium(url, tmp_path, *extra):
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=5000", *extra, url]
    return subprocess.run(args, capture_output=True, text=True, timeout=90, cwd=tmp_path)


@pytest.fixture(scope="module", params=["native", "github"])
def hub(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"login-{request.param}")
    write_png(tmp / "logo.png", 120, 60, MAGENTA)
    write_png(tmp / "favicon.png", 16, 16, (0, 128, 0))
    auth = {"mode": "native", "adminUsers": ["admin"]} if request.param == "native" else {
        "mode": "github", "allowedUsers": ["alice"],
        "github": {"clientId": "jhub", "callbackUrl": "https://hub.example.com/hub/oauth_callback"}}
    cfg = jhub_cfg(auth=auth, branding={
        "title": TITLE, "logoFile": str(tmp / "logo.png"), "faviconFile": str(tmp / "favicon.png"),
        "loginAnnouncement": "Maintenance on Friday 18:00", "signInText": BUTTON})
    # The old installer framed the hub with X-Frame-Options: ALLOWALL; configure() must drop it.
    before = 'c.JupyterHub.tornado_settings = {"headers": {"X-Frame-Options": "ALLOWALL"}}'
    running = Hub(tmp, cfg, env={"OAUTH_CLIENT_SECRET": "not-a-real-secret"}, before=before)
    running.mode, running.tmp = request.param, tmp
    yield running
    running.stop()


def test_login_page_in_chromium_shows_title_logo_and_button(hub):
    result = chromium(f"{hub.url}/hub/login", hub.tmp, "--dump-dom")
    assert result.returncode == 0, result.stderr
    page = Page(result.stdout)
    assert page.title.strip() == TITLE
    assert page.elements["jhub-login-title"]["tag"] == "h1" and TITLE in "".join(page.text)
    assert page.elements["logo"]["src"] == "/hub/logo" and page.elements["logo"]["alt"] == TITLE
    assert page.elements["favicon"]["href"].startswith("data:image/png;base64,")
    assert "Maintenance on Friday 18:00" in "".join(page.text)
    if hub.mode == "native":
        assert page.elements["login_submit"]["value"] == BUTTON
        assert "jhub-signup" in page.elements  # signup is on, approval is needed
    else:
        button = page.elements["jhub-sign-in"]
        assert button["tag"] == "a" and button["href"].startswith("/hub/oauth_login")
        assert BUTTON in "".join(page.text)


def test_logo_is_served_and_painted(hub):
    status, headers, body = hub.request("GET", "/hub/logo")
    assert status == 200 and body == (hub.tmp / "logo.png").read_bytes()
    shot = hub.tmp / f"screenshot-{hub.mode}.png"
    result = chromium(f"{hub.url}/hub/login", hub.tmp, f"--screenshot={shot}", "--window-size=1000,700")
    assert result.returncode == 0 and shot.exists(), result.stderr
    assert sum(1 for px in read_pixels(shot) if px == MAGENTA) > 1000  # the logo is on screen


def test_no_allowall_framing_header(hub):
    status, headers, _ = hub.request("GET", "/hub/login")
    assert status == 200
    assert not [v for v in header(headers, "X-Frame-Options") if v.upper() == "ALLOWALL"]
    assert any("frame-ancestors 'none'" in v for v in header(headers, "Content-Security-Policy"))
