"""Stop the processes jupyter-server-proxy started (Desktop, VS Code, TensorBoard, ...) once nobody uses them.

jupyter-server-proxy (4.6) starts a launcher entry's process on its first request and keeps it until the
server stops; it has no idle stop of its own. This server extension adds one, for every process-backed
entry (the image's own and those of packages such as jupyter-remote-desktop-proxy):

- each proxied request, websocket message or raw-socket byte counts as use (the hooks jupyter-server-proxy
  already calls to record activity), and an open websocket (a Desktop or VS Code tab) keeps it in use;
- a process that has had no open connection and no traffic for ``JhubIdleProxy.timeout`` seconds is stopped
  with its whole process tree; the next request starts it again, as the first one did.

Configuration (traitlets, e.g. in jupyter_server_config.py or on the command line):
    c.JhubIdleProxy.timeout = 1800                 # seconds; 0 turns the idle stop off
    c.JhubIdleProxy.timeouts = {"vscode": 3600}    # per entry name
    c.JhubIdleProxy.interval = 30                  # how often to look, seconds
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from dataclasses import dataclass, field

import psutil
from jupyter_server_proxy.handlers import SuperviseAndProxyHandler
from tornado.ioloop import PeriodicCallback
from traitlets import Dict, Float
from traitlets.config import LoggingConfigurable


def _jupyter_server_extension_points():
    return [{"module": "jhub_idle_proxy"}]


@dataclass
class Tracked:
    """What the extension knows of one launcher entry's process."""

    name: str
    state: dict  # jupyter-server-proxy's own per-entry state: "proc", "proc_lock", "port", "unix_socket"
    last_use: float
    proc: object = None  # the process last seen: a new one (a restart) starts with a fresh idle clock
    sockets: weakref.WeakSet = field(default_factory=weakref.WeakSet)

    def open_sockets(self) -> int:
        return sum(1 for handler in list(self.sockets) if getattr(handler, "ws_connection", None) is not None)


class JhubIdleProxy(LoggingConfigurable):
    timeout = Float(1800.0, config=True, help="Seconds without use before a proxied process stops (0: never).")
    timeouts = Dict(value_trait=Float(), config=True, help="Per-entry timeouts in seconds, by entry name.")
    interval = Float(30.0, config=True, help="Seconds between two looks for idle processes.")

    def __init__(self, *, clock=time.monotonic, **kwargs):
        super().__init__(**kwargs)
        self.clock = clock
        self.tracked: dict[int, Tracked] = {}

    # --- use, reported by the handlers ---
    def used(self, handler) -> None:
        tracked = self.tracked.get(id(handler.state))
        if tracked is None:
            tracked = self.tracked[id(handler.state)] = Tracked(handler.name, handler.state, self.clock())
        tracked.last_use = self.clock()
        if getattr(handler, "ws_connection", None) is not None:
            tracked.sockets.add(handler)

    # --- the look: a one-shot function the periodic callback runs ---
    def timeout_for(self, name: str) -> float:
        return self.timeouts.get(name, self.timeout)

    def is_idle(self, tracked: Tracked) -> bool:
        now = self.clock()
        timeout = self.timeout_for(tracked.name)
        proc = tracked.state.get("proc")
        if timeout <= 0 or proc is None or isinstance(proc, str) or not proc.running:
            return False
        if proc is not tracked.proc or tracked.open_sockets():
            tracked.proc, tracked.last_use = proc, now  # just started, or an open tab: in use
            return False
        return now - tracked.last_use >= timeout

    def idle_entries(self) -> list[Tracked]:
        return [tracked for tracked in self.tracked.values() if self.is_idle(tracked)]

    async def stop_idle(self) -> None:
        for tracked in self.idle_entries():
            await self.stop(tracked)

    async def stop(self, tracked: Tracked) -> None:
        async with tracked.state["proc_lock"]:  # held by jupyter-server-proxy while it starts the process
            if not self.is_idle(tracked):  # used, or restarted, while we waited for the lock
                return
            proc = tracked.state["proc"]
            self.log.info("jhub-idle-proxy: stopping %s (pid %s), idle for %.0f s", tracked.name, proc.pid,
                          self.clock() - tracked.last_use)
            children = _children(proc.pid)
            try:
                await asyncio.wait_for(proc.terminate(), 10)
            except asyncio.TimeoutError:
                await proc.kill()
            await asyncio.get_running_loop().run_in_executor(None, _end, children)
            # Forget the process (and a unix socket path, which its server may refuse to reuse): the next
            # request starts a fresh one through jupyter-server-proxy's own ensure_process.
            del tracked.state["proc"]
            socket_path = tracked.state.pop("unix_socket", None)
            if socket_path and os.path.exists(socket_path):
                os.unlink(socket_path)


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _end(processes: list[psutil.Process]) -> None:
    """SIGTERM what the entry's process left behind (a desktop session's programs), SIGKILL stragglers."""
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(processes, timeout=5)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def _tracking(handler_class: type, idle: JhubIdleProxy) -> type:
    """A subclass of one entry's handler that reports every use to ``idle``."""

    class Tracking(handler_class):
        jhub_idle_tracking = True

        def _record_activity(self):
            idle.used(self)
            super()._record_activity()

    Tracking.__name__ = Tracking.__qualname__ = f"IdleTracked{handler_class.__name__}"
    return Tracking


def track_handlers(router, idle: JhubIdleProxy) -> int:
    """Swap each process-backed server-proxy handler in ``router`` (nested routers too) for a tracking one."""
    swapped = 0
    for rule in getattr(router, "rules", []):
        target = rule.target
        if isinstance(target, type):
            if issubclass(target, SuperviseAndProxyHandler) and not getattr(target, "jhub_idle_tracking", False):
                rule.target = _tracking(target, idle)
                swapped += 1
        else:
            swapped += track_handlers(target, idle)
    return swapped


def _load_jupyter_server_extension(serverapp):
    idle = JhubIdleProxy(parent=serverapp, log=serverapp.log)

    def look():
        # Entries are registered by jupyter-server-proxy's own extension, which may load after this one.
        track_handlers(serverapp.web_app.default_router, idle)
        asyncio.ensure_future(idle.stop_idle())

    serverapp.io_loop.add_callback(lambda: track_handlers(serverapp.web_app.default_router, idle))
    if idle.timeout > 0 or any(value > 0 for value in idle.timeouts.values()):
        PeriodicCallback(look, idle.interval * 1000).start()
    serverapp.web_app.settings["jhub_idle_proxy"] = idle
    serverapp.log.info("jhub-idle-proxy: proxied processes stop after %s s idle (per entry: %s)",
                       idle.timeout, idle.timeouts or "none")
