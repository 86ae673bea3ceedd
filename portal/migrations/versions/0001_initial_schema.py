"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 03:36:09.808579
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=512), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('mysql_outbox',
    sa.Column('pod_uid', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pod_uid', name=op.f('pk_mysql_outbox'))
    )
    op.create_table('pod_sessions',
    sa.Column('pod_uid', sa.String(length=64), nullable=False),
    sa.Column('user_name', sa.String(length=255), nullable=False),
    sa.Column('server_name', sa.String(length=255), nullable=False),
    sa.Column('namespace', sa.String(length=63), nullable=False),
    sa.Column('pod_name', sa.String(length=253), nullable=False),
    sa.Column('node_name', sa.String(length=253), nullable=True),
    sa.Column('image', sa.String(length=1024), nullable=True),
    sa.Column('gpu_model', sa.String(length=255), nullable=False),
    sa.Column('cpu_request', sa.Float(), nullable=False),
    sa.Column('memory_request_bytes', sa.BigInteger(), nullable=False),
    sa.Column('gpu_count', sa.Integer(), nullable=False),
    sa.Column('rdma_count', sa.Integer(), nullable=False),
    sa.Column('storage_request_bytes', sa.BigInteger(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_source', sa.String(length=16), nullable=True),
    sa.Column('end_approximate', sa.Boolean(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pod_uid', name=op.f('pk_pod_sessions'))
    )
    with op.batch_alter_table('pod_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pod_sessions_ended_at'), ['ended_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pod_sessions_started_at'), ['started_at'], unique=False)
        batch_op.create_index('ix_pod_sessions_user_name_started_at', ['user_name', 'started_at'], unique=False)

    op.create_table('portal_meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=1024), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_portal_meta'))
    )
    op.create_table('rates',
    sa.Column('gpu_model', sa.String(length=255), nullable=False),
    sa.Column('gpu_hour', sa.Float(), nullable=True),
    sa.Column('cpu_core_hour', sa.Float(), nullable=True),
    sa.Column('memory_gib_hour', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('gpu_model', name=op.f('pk_rates'))
    )
    op.create_table('usage_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('user_name', sa.String(length=255), nullable=False),
    sa.Column('gpu_model', sa.String(length=255), nullable=False),
    sa.Column('runtime_seconds', sa.Float(), nullable=False),
    sa.Column('gpu_seconds', sa.Float(), nullable=False),
    sa.Column('cpu_core_seconds', sa.Float(), nullable=False),
    sa.Column('memory_gib_seconds', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'user_name', 'gpu_model', name=op.f('pk_usage_daily'))
    )
    op.create_table('users',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('cpu_limit', sa.Float(), nullable=True),
    sa.Column('memory_gib_limit', sa.Float(), nullable=True),
    sa.Column('gpu_limit', sa.Integer(), nullable=True),
    sa.Column('gpu_hours_monthly', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_by', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_users'))
    )


def downgrade() -> None:
    op.drop_table('users')
    op.drop_table('usage_daily')
    op.drop_table('rates')
    op.drop_table('portal_meta')
    with op.batch_alter_table('pod_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_pod_sessions_user_name_started_at')
        batch_op.drop_index(batch_op.f('ix_pod_sessions_started_at'))
        batch_op.drop_index(batch_op.f('ix_pod_sessions_ended_at'))

    op.drop_table('pod_sessions')
    op.drop_table('mysql_outbox')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
