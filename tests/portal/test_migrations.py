"""Migrations build the schema from scratch on PostgreSQL and SQLite and match the models exactly."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import portal.models  # noqa: F401
from portal.db import alembic_config, make_engine, migrate

EXPECTED_TABLES = {
    "alembic_version", "audit_log", "gpu_hourly", "gpu_samples", "gpu_session_usage", "mysql_outbox", "pod_sessions",
    "portal_meta", "portal_sessions", "rates", "usage_daily", "users",
}


def _schema_diff(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_migrations_from_scratch_match_models_and_downgrade_cleanly(backend, own_pg_url, tmp_path):
    url = own_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'trial.db'}"
    migrate(url)
    assert _schema_diff(url) == [], "models changed without a migration: run alembic revision --autogenerate"
    engine = make_engine(url)
    assert set(sa.inspect(engine).get_table_names()) == EXPECTED_TABLES

    command.downgrade(alembic_config(url), "base")
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    migrate(url)  # and up again: the downgrade left nothing behind that blocks it
    assert set(sa.inspect(engine).get_table_names()) == EXPECTED_TABLES
    engine.dispose()


def test_timestamps_are_timezone_aware_in_postgresql(migrated_pg_url):
    engine = make_engine(migrated_pg_url)
    with engine.connect() as conn:
        kinds = conn.execute(sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'pod_sessions' AND column_name LIKE '%\\_at' ORDER BY column_name"
        )).all()
    engine.dispose()
    assert kinds == [(name, "timestamp with time zone") for name in ("ended_at", "last_seen_at", "started_at")]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_0006_adds_the_mig_activity_flag_and_keeps_the_samples_stored_before(backend, own_pg_url, tmp_path):
    url = own_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'trial.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0005")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO gpu_samples (node_name, gpu_uuid, sampled_at, parent_uuid, gpu_model, util_percent, "
            "memory_used_bytes, memory_total_bytes, allocated, pod_uids) VALUES ('gpu01', 'MIG-a', "
            "'2026-05-20 04:00:00+00:00', 'GPU-a', 'NVIDIA A100-SXM4-80GB MIG 3g.40gb', NULL, 1, 2, true, 'uid')"))
    command.upgrade(config, "head")
    columns = {c["name"]: c for c in sa.inspect(engine).get_columns("gpu_samples")}
    assert columns["active"]["nullable"]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT gpu_uuid, active FROM gpu_samples")).all() == [("MIG-a", None)]
    command.downgrade(config, "0005")
    assert "active" not in {c["name"] for c in sa.inspect(engine).get_columns("gpu_samples")}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM gpu_samples")).scalar() == 1
    engine.dispose()
