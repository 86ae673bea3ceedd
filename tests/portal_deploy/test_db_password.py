"""The database's `set-password` init container, run for real against this machine's PostgreSQL binaries:
a database kept from an earlier stack (its volume survives `pulumi destroy`) takes the new stack's password
before PostgreSQL starts, so the portal can connect; the old password stops working."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from components.portal.manifests import SET_PASSWORD

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = [
    pytest.mark.skipif(not BIN, reason="no PostgreSQL server binaries under /usr/lib/postgresql"),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None,
                       reason="needs root to run PostgreSQL as the postgres user"),
]


def as_postgres(argv: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    path = f"{BIN[-1]}:/usr/bin:/bin"
    pairs = [f"{k}={v}" for k, v in {**env, "PATH": path}.items()]
    return subprocess.run(["runuser", "-u", "postgres", "--", "env", *pairs, *argv], capture_output=True,
                          text=True, timeout=120, **kw)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pg_dir():
    """A folder the postgres user can reach (pytest's own tmp_path is root's, mode 0700)."""
    base = Path(tempfile.mkdtemp(prefix="jhub-pg-"))
    os.chown(base, *_postgres_ids())
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_a_kept_database_takes_the_new_password(pg_dir):
    tmp_path = pg_dir
    data, run_dir = tmp_path / "pgdata", tmp_path / "run"
    run_dir.mkdir()
    os.chown(run_dir, *_postgres_ids())
    (tmp_path / "old").write_text("old-password-0123456789abcdef\n")
    os.chown(tmp_path / "old", *_postgres_ids())
    made = as_postgres(["initdb", "-D", str(data), "-U", "portal", "--auth=scram-sha-256",
                        f"--pwfile={tmp_path / 'old'}"], {})
    assert made.returncode == 0, made.stderr

    new = "0a1b2c3d4e5f60718293a4b5c6d7e8f9abcdef0123456789"
    env = {"PGDATA": str(data), "POSTGRES_USER": "portal", "POSTGRES_DB": "postgres", "POSTGRES_PASSWORD": new}
    done = as_postgres(["sh", "-c", SET_PASSWORD], env)
    assert done.returncode == 0, done.stderr
    assert "password of role portal set from the Secret" in done.stdout
    assert new not in done.stdout + done.stderr, "the password is never printed"

    port = free_port()
    server = subprocess.Popen(["runuser", "-u", "postgres", "--", f"{BIN[-1]}/postgres", "-D", str(data),
                               "-p", str(port), "-k", str(run_dir), "-c", "listen_addresses=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"host=127.0.0.1 port={port} dbname=postgres user=portal"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(f"{url} password={new}", connect_timeout=2) as conn:
                    assert conn.execute("select current_user").fetchone() == ("portal",)
                break
            except psycopg.OperationalError as error:
                if "password authentication failed" in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(f"{url} password=old-password-0123456789abcdef", connect_timeout=2)
    finally:
        server.terminate()
        server.wait(30)


def test_a_new_volume_is_left_to_initdb(pg_dir):
    tmp_path = pg_dir
    env = {"PGDATA": str(tmp_path / "pgdata"), "POSTGRES_USER": "portal", "POSTGRES_DB": "portal",
           "POSTGRES_PASSWORD": "x" * 48}
    done = as_postgres(["sh", "-c", SET_PASSWORD], env)
    assert done.returncode == 0 and "new database" in done.stdout, done.stderr


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid
