"""Shared fixtures for the portal tests: real PostgreSQL and MariaDB, fresh databases, a TCP proxy.

Servers come from the environment (defaults: this machine's services):
  JHUB_TEST_PG_URL     an admin URL on the PostgreSQL server; a throwaway database is created beside it
  JHUB_TEST_MYSQL_URL  an admin URL on the MySQL/MariaDB server; likewise
Tests that need an absent server skip and say which one.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("JHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get("JHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _throwaway_database(admin_url: str, what: str) -> Iterator[str]:
    """Create a database named jhub_test_<random> on the server of ``admin_url``; drop it afterwards."""
    url = make_url(admin_url)
    name = f"jhub_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"{what} is not reachable at {url.render_as_string(hide_password=True)}: {exc.orig}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            if url.get_backend_name() == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
                )
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session."""
    yield from _throwaway_database(PG_ADMIN_URL, "PostgreSQL (set JHUB_TEST_PG_URL)")


@pytest.fixture
def own_pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own, for a test that leaves it at an older revision or with
    rows: never the session's migrated database, which every other portal test shares."""
    yield from _throwaway_database(PG_ADMIN_URL, "PostgreSQL (set JHUB_TEST_PG_URL)")


@pytest.fixture(scope="session")
def migrated_pg_url(pg_database_url: str) -> str:
    """The session's PostgreSQL database with every portal migration applied."""
    from portal.db import migrate

    migrate(pg_database_url)
    return pg_database_url


@pytest.fixture
def pg_url(migrated_pg_url: str) -> str:
    """A migrated PostgreSQL database whose portal tables are empty at the start of the test."""
    from sqlmodel import SQLModel

    import portal.models  # noqa: F401

    engine = sa.create_engine(migrated_pg_url)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY"))
    engine.dispose()
    return migrated_pg_url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A migrated SQLite database file (the embedded local-trial default)."""
    from portal.db import migrate

    url = f"sqlite:///{tmp_path / 'portal.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def mysql_database_url() -> Iterator[str]:
    """A fresh, empty MySQL/MariaDB database for this test session."""
    yield from _throwaway_database(MYSQL_ADMIN_URL, "MySQL/MariaDB (set JHUB_TEST_MYSQL_URL)")


class TcpProxy:
    """A TCP forwarder to a real server whose link a test can cut and restore (a network outage)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url_for(self, url: str) -> str:
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until restore()."""
        self._up.clear()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def tcp_proxy_factory() -> Iterator:
    """Make TcpProxy objects to real servers; all are closed after the test."""
    proxies: list[TcpProxy] = []

    def make(url: str) -> TcpProxy:
        parsed = make_url(url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or {"postgresql": 5432}.get(
            parsed.get_backend_name(), 3306))
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
