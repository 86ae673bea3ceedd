"""``python -m portal``: run the portal (web app + collector + optional MySQL export), or a helper.

  python -m portal [serve]     validate settings, migrate, then serve until SIGTERM/SIGINT
  python -m portal check       validate the settings and exit (0 = good, 2 = bad, with the reason)
  python -m portal migrate     bring the database schema up to date and exit
  python -m portal hash-token  print a new API token and its SHA-256 (for PORTAL_API_TOKENS);
                               with --stdin, hash the token read from standard input instead
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from portal.app.settings import WebSettings, load_engine_settings, load_web_settings
from portal.settings import PortalSettings, SettingsError

log = logging.getLogger("portal")
JOIN_SECONDS = 10.0


def _hash_token(from_stdin: bool) -> int:
    from portal.app.auth.tokens import digest, new_token

    if from_stdin:
        token = sys.stdin.readline().strip()
        if len(token) < 16:
            print("portal: a token must be at least 16 characters", file=sys.stderr)
            return 2
        print(digest(token))
        return 0
    token = new_token()
    print(f"token:  {token}\nsha256: {digest(token)}")
    return 0


def supervised(name: str, target: Callable[[], None], stop: threading.Event, retry_seconds: float = 5.0):
    """Run ``target`` until ``stop``; an unexpected crash is logged and the loop restarted."""
    def run() -> None:
        while not stop.is_set():
            try:
                target()
            except Exception:
                log.exception("%s crashed; restarting in %.0fs", name, retry_seconds)
                stop.wait(retry_seconds)
            else:
                if not stop.is_set():
                    stop.wait(retry_seconds)
        log.info("%s stopped", name)

    return threading.Thread(target=run, name=name, daemon=True)


def _storage_auto_removal(settings: WebSettings, engine, stop: threading.Event) -> Callable[[], None]:
    from portal.app.services.storage_view import remove_all_idle

    def loop() -> None:
        while not stop.wait(3600):  # first pass an hour after start, then hourly; idle is measured in days
            removed = remove_all_idle(engine, settings.storage_base_path,
                                      idle_days=settings.storage_auto_remove_idle_days, now=datetime.now(UTC),
                                      walk_limit=settings.storage_walk_max_entries)
            if removed:
                log.info("removed idle storage", extra={"directories": removed})

    return loop


def _engine(settings: PortalSettings):
    from portal.db import engine_from_settings

    url = settings.database_url.get_secret_value()
    extra = {"connect_args": {"connect_timeout": 5}} if url.startswith("postgresql") else {}
    return engine_from_settings(settings, **extra)


def _server(app, web: WebSettings):
    """A uvicorn server that, on SIGTERM/SIGINT, shuts down gracefully and then returns to us (uvicorn's own
    default re-raises the signal afterwards, which would kill the process before the workers stop)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server(uvicorn.Config(app, host=web.host, port=web.port, log_config=None, access_log=False,
                                 server_header=False, timeout_graceful_shutdown=10))


def serve(settings: PortalSettings, web: WebSettings, engine, gpu=None) -> int:
    from portal.app import create_app
    from portal.collector.service import make_collector, make_mysql_syncer
    from portal.gpu.reclaim import run_gpu_worker
    from portal.gpu.settings import load_gpu_settings

    gpu = gpu if gpu is not None else load_gpu_settings()

    stop = threading.Event()
    workers, stoppers, collector = [], [stop.set], None
    if web.collector_enabled:
        try:
            collector = make_collector(settings, engine=engine, stop=stop)
        except Exception as exc:  # no kubeconfig, no service account: say so before serving
            print(f"portal: cannot start the collector: {exc} (set PORTAL_KUBE_CONFIG_MODE/PORTAL_KUBECONFIG, "
                  "or PORTAL_COLLECTOR_ENABLED=false)", file=sys.stderr)
            return 2
        workers.append(supervised("collector", collector.run, stop))
        stoppers.append(collector.request_stop)
    syncer = make_mysql_syncer(settings, engine=engine, stop=stop)
    if syncer is not None:
        workers.append(supervised("mysql-sync", syncer.run, stop))
    if web.storage_auto_remove_idle_days is not None and web.storage_base_path is not None:
        workers.append(supervised("storage-auto-remove", _storage_auto_removal(web, engine, stop), stop))
    # GPU samples: retention prune, and idle-GPU reclaim when PORTAL_GPU_RECLAIM_ENABLED
    workers.append(supervised("gpu", lambda: run_gpu_worker(engine, settings=gpu, stop=stop), stop))

    app = create_app(settings, web, engine=engine, collector=collector, syncer=syncer,
                     workers={worker.name: worker for worker in workers}, gpu=gpu)
    server = _server(app, web)
    for worker in workers:
        worker.start()
    log.info("portal listening", extra={"host": web.host, "port": web.port, "workers": [w.name for w in workers]})
    try:
        server.run()
    finally:
        for request_stop in stoppers:
            request_stop()
        for worker in workers:
            worker.join(JOIN_SECONDS)
            if worker.is_alive():
                log.warning("%s did not stop within %.0fs; exiting anyway", worker.name, JOIN_SECONDS)
        engine.dispose()
    log.info("portal stopped")
    return 0 if server.started else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal", description="jhub usage and billing portal")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "check", "migrate", "hash-token"])
    parser.add_argument("--stdin", action="store_true", help="hash-token: hash a token read from standard input")
    args = parser.parse_args(argv)
    if args.command == "hash-token":
        return _hash_token(args.stdin)
    try:
        from portal.gpu.settings import load_gpu_settings

        settings, web, gpu = load_engine_settings(), load_web_settings(), load_gpu_settings()
    except SettingsError as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 2

    from portal.app.logs import configure_logging

    configure_logging(level=web.log_level, fmt=web.log_format)
    if args.command == "check":
        print("portal: settings are valid")
        return 0
    try:
        engine = _engine(settings)
    except Exception as exc:  # e.g. a driver that is not installed
        print(f"portal: cannot use PORTAL_DATABASE_URL: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    changed = []
    if web.auto_migrate or args.command == "migrate":
        from portal.collector.service import seed_database
        from portal.db import migrate

        try:
            migrate(settings.database_url.get_secret_value())
            changed = seed_database(settings, engine=engine)
        except Exception as exc:
            engine.dispose()
            print(f"portal: cannot migrate the database: {type(exc).__name__}: {getattr(exc, 'orig', exc)}",
                  file=sys.stderr)
            return 1
        log.info("database schema is current")
        if changed:
            log.info("configured rates applied from today", extra={"gpu_models": changed})
    if args.command == "migrate":
        return 0
    return serve(settings, web, engine, gpu)


if __name__ == "__main__":
    sys.exit(main())
