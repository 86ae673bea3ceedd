"""The idle stop's decisions (images/notebook/etc/jupyter/jhub_idle_proxy.py) with the clock as a seam: run
inside the image's own Python (its jupyter-server-proxy, traitlets, psutil), on jupyter-server-proxy's own
per-entry state dicts and real child processes."""

from __future__ import annotations

import subprocess

import pytest

from tests.images.runtime_support import ETC_JUPYTER, image_venv

pytestmark = pytest.mark.slow

SCRIPT = r'''
import asyncio, subprocess, sys
sys.path.insert(0, sys.argv[1])
from simpervisor import SupervisedProcess
import jhub_idle_proxy as idle_proxy

now = [1000.0]
idle = idle_proxy.JhubIdleProxy(clock=lambda: now[0], timeout=60, timeouts={"vscode": 600, "off": 0})

class Handler:  # what the extension reads of a jupyter-server-proxy handler
    def __init__(self, name, state, ws=None):
        self.name, self.state, self.ws_connection = name, state, ws

async def main():
    states = {name: {"proc_lock": asyncio.Lock()} for name in ("tensorboard", "vscode", "off", "desktop")}
    procs = {}
    for name, state in states.items():
        # a process that leaves a grandchild behind, as a desktop session does
        proc = SupervisedProcess(name, "sh", "-c", "sleep 300 & exec sleep 300")
        await proc.start()
        state["proc"] = procs[name] = proc
        idle.used(Handler(name, state))
    tab = Handler("desktop", states["desktop"], ws=object())
    idle.used(tab)
    assert idle.idle_entries() == [], "a process seen for the first time starts a fresh idle clock"
    now[0] += 59
    assert idle.idle_entries() == []
    now[0] += 1
    assert [t.name for t in idle.idle_entries()] == ["tensorboard"], "60 s default; vscode 600; off never; desktop has a tab"
    idle.used(Handler("tensorboard", states["tensorboard"]))
    assert idle.idle_entries() == [], "a request resets the clock"
    now[0] += 60
    grandchildren = idle_proxy._children(procs["tensorboard"].pid)
    assert grandchildren
    await idle.stop_idle()
    assert "proc" not in states["tensorboard"], "stopped and forgotten, so the next request starts it again"
    assert not procs["tensorboard"].running
    assert all(not g.is_running() or g.status() == "zombie" for g in grandchildren), "its children end too"
    assert procs["desktop"].running and procs["off"].running and procs["vscode"].running
    tab.ws_connection = None  # the tab closed
    now[0] += 59
    assert idle.idle_entries() == [], "the open tab kept the desktop in use until it closed"
    now[0] += 1
    assert [t.name for t in idle.idle_entries()] == ["desktop"]
    now[0] += 600
    assert sorted(t.name for t in idle.idle_entries()) == ["desktop", "vscode"]
    await idle.stop_idle()
    assert procs["off"].running, "a timeout of 0 never stops"
    leftovers = idle_proxy._children(procs["off"].pid)
    await procs["off"].kill()
    idle_proxy._end(leftovers)
    print("idle-ok")

asyncio.run(main())
'''


def test_idle_decisions_and_the_stop_of_a_whole_tree():
    venv = image_venv()
    result = subprocess.run([str(venv / "bin" / "python"), "-c", SCRIPT, str(ETC_JUPYTER)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "idle-ok" in result.stdout, result.stdout + result.stderr
