"""The notebook image's Launcher entries, run for real: JupyterLab with the image's own configuration
(images/notebook/etc/jupyter), its pinned packages, TigerVNC + XFCE from Debian and code-server from the
npm registry. Desktop, VS Code and TensorBoard are listed, start on demand, load in Chromium, and stop
once idle (the idle time is shortened for the test)."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from tests.support.chromium import launched as chromium_browser

from tests.images.runtime_support import code_server, image_venv, start_lab, stop_lab, wait_until

pytestmark = pytest.mark.slow
IDLE_S = 8
DESKTOP_PROGRAMS = ("vncserver", "Xtigervnc", "xfce4-session", "dbus-run-session")


@pytest.fixture(scope="module")
def code_server_bin():
    try:
        return code_server()
    except pytest.skip.Exception as skipped:
        return skipped  # the VS Code tests skip with this reason; the rest runs


@pytest.fixture(scope="module")
def lab(tmp_path_factory, code_server_bin):
    venv = image_venv()
    extra = (code_server_bin,) if not isinstance(code_server_bin, BaseException) else ()
    lab = start_lab(tmp_path_factory.mktemp("lab"), venv, idle_timeout=IDLE_S, extra_path=extra)
    yield lab
    stop_lab(lab)
    assert not lab.children(""), "processes of the run outlived the teardown"


@pytest.fixture(scope="module")
def browser():
    yield from chromium_browser()


def test_the_launcher_lists_desktop_vscode_and_tensorboard(lab):
    status, body, _ = lab.get("/server-proxy/servers-info")
    assert status == 200
    entries = {item["launcher_entry"]["title"]: item for item in json.loads(body)["server_processes"]}
    assert {"Desktop", "VS Code", "TensorBoard"} <= set(entries), sorted(entries)
    assert all(entries[title]["launcher_entry"]["enabled"] for title in ("Desktop", "VS Code", "TensorBoard"))
    assert entries["Desktop"]["launcher_entry"]["path_info"] == "desktop"
    assert entries["VS Code"]["name"] == "vscode" and entries["TensorBoard"]["name"] == "tensorboard"
    for title in ("VS Code", "TensorBoard"):
        status, icon, headers = lab.get(entries[title]["launcher_entry"]["icon_url"])
        assert status == 200 and b"<svg" in icon, title
    # The Lab front end that turns these into Launcher tiles is installed and enabled.
    status, page, _ = lab.get("/lab")
    assert status == 200 and b"@jupyterhub/jupyter-server-proxy" in page


def test_tensorboard_starts_on_demand_and_stops_when_idle(lab):
    assert not lab.children("bin/tensorboard"), "TensorBoard runs before anyone asked for it"
    status, body, _ = lab.get("/tensorboard/", timeout=120)
    assert status == 200 and b"TensorBoard" in body
    first = lab.children("bin/tensorboard")
    assert first, "no TensorBoard process after a request"
    assert f"--logdir {lab.home}" in open(f"/proc/{first[0]}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    # Used now and then (each request resets the idle clock): still the same process.
    for _ in range(3):
        time.sleep(IDLE_S / 3)
        assert lab.get("/tensorboard/")[0] == 200
    assert lab.children("bin/tensorboard") == first
    # Left alone: stopped, with its data server child.
    assert wait_until(lambda: not lab.children("tensorboard"), IDLE_S + 20), "TensorBoard did not stop when idle"
    assert "jhub-idle-proxy: stopping tensorboard" in lab.log_text()
    # The next request starts a fresh one.
    status, body, _ = lab.get("/tensorboard/", timeout=120)
    assert status == 200 and b"TensorBoard" in body
    again = lab.children("bin/tensorboard")
    assert again and again != first


def test_desktop_connects_in_chromium_stays_while_open_and_stops_when_left(lab, browser, tmp_path):
    missing = [program for program in DESKTOP_PROGRAMS if not shutil.which(program)]
    if missing:
        pytest.skip(f"the desktop needs {missing} (apt-get install tigervnc-standalone-server xfce4-session ...)")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{lab.url}/desktop/?token={lab.token}")
    page.wait_for_function("document.querySelector('#status').textContent.trim() === 'Connected'",
                           timeout=90_000)
    canvas = page.wait_for_selector("#screen canvas", timeout=30_000)
    box = canvas.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
    assert lab.children("Xtigervnc"), "no VNC server behind the connected page"
    # The XFCE session draws: wait for its panel, then keep a picture of it.
    assert wait_until(lambda: lab.children("xfce4-panel"), 60), "the XFCE session did not start"
    time.sleep(3)
    page.screenshot(path=str(tmp_path / "desktop.png"))
    # An open tab is use: well past the idle time the desktop still runs and the page is still connected.
    time.sleep(IDLE_S + 4)
    assert lab.children("Xtigervnc")
    assert page.inner_text("#status").strip() == "Connected"
    # Tab closed: the desktop, its VNC server and its session stop.
    context.close()
    assert wait_until(lambda: not lab.children("Xtigervnc") and not lab.children("xfce4-session"),
                      IDLE_S + 30), "the desktop did not stop once its tab was closed"
    assert "jhub-idle-proxy: stopping desktop-websockify" in lab.log_text()


def test_vscode_loads_the_workbench_on_the_working_folder_and_stops_when_left(lab, browser, code_server_bin):
    if isinstance(code_server_bin, BaseException):
        pytest.skip(str(code_server_bin))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{lab.url}/vscode/?token={lab.token}", timeout=120_000)
    page.wait_for_selector(".monaco-workbench", timeout=120_000)
    process = lab.children("code-server")
    assert process, "no code-server process"
    cmdline = open(f"/proc/{process[0]}/cmdline", "rb").read().split(b"\0")
    assert str(lab.home).encode() in cmdline, cmdline  # the folder the server runs in
    assert wait_until(lambda: lab.home.name in page.title(), 60), page.title()
    context.close()
    assert wait_until(lambda: not lab.children("code-server"), IDLE_S + 30), "code-server did not stop when idle"
    assert "jhub-idle-proxy: stopping vscode" in lab.log_text()
