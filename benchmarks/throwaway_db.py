"""A PostgreSQL database made for one benchmark run and dropped after it (JHUB_TEST_PG_URL overrides)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable

import sqlalchemy as sa

ADMIN_URL = os.environ.get("JHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def run_in_throwaway_database(run: Callable[[str], None]) -> None:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"jhub_bench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        run(url)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
