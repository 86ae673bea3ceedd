"""GPU utilisation: raw samples from the node agents (pruned), per-session usage and reclaim state, hourly per-GPU rollups

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 21:09:09.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('gpu_hourly',
    sa.Column('node_name', sa.String(length=253), nullable=False),
    sa.Column('gpu_uuid', sa.String(length=96), nullable=False),
    sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
    sa.Column('parent_uuid', sa.String(length=96), nullable=False),
    sa.Column('gpu_model', sa.String(length=255), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('util_samples', sa.Integer(), nullable=False),
    sa.Column('util_sum', sa.Float(), nullable=False),
    sa.Column('util_peak', sa.Float(), nullable=True),
    sa.Column('memory_sum_bytes', sa.BigInteger(), nullable=False),
    sa.Column('memory_peak_bytes', sa.BigInteger(), nullable=False),
    sa.Column('memory_total_bytes', sa.BigInteger(), nullable=False),
    sa.Column('allocated_samples', sa.Integer(), nullable=False),
    sa.Column('busy_samples', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('node_name', 'gpu_uuid', 'hour', name=op.f('pk_gpu_hourly'))
    )
    with op.batch_alter_table('gpu_hourly', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gpu_hourly_hour'), ['hour'], unique=False)

    op.create_table('gpu_samples',
    sa.Column('node_name', sa.String(length=253), nullable=False),
    sa.Column('gpu_uuid', sa.String(length=96), nullable=False),
    sa.Column('sampled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('parent_uuid', sa.String(length=96), nullable=False),
    sa.Column('gpu_model', sa.String(length=255), nullable=False),
    sa.Column('util_percent', sa.Float(), nullable=True),
    sa.Column('memory_used_bytes', sa.BigInteger(), nullable=False),
    sa.Column('memory_total_bytes', sa.BigInteger(), nullable=False),
    sa.Column('power_watts', sa.Float(), nullable=True),
    sa.Column('temperature_c', sa.Float(), nullable=True),
    sa.Column('allocated', sa.Boolean(), nullable=False),
    sa.Column('pod_uids', sa.String(length=1024), nullable=False),
    sa.PrimaryKeyConstraint('node_name', 'gpu_uuid', 'sampled_at', name=op.f('pk_gpu_samples'))
    )
    with op.batch_alter_table('gpu_samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_gpu_samples_sampled_at'), ['sampled_at'], unique=False)

    op.create_table('gpu_session_usage',
    sa.Column('pod_uid', sa.String(length=64), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('util_samples', sa.Integer(), nullable=False),
    sa.Column('util_sum', sa.Float(), nullable=False),
    sa.Column('util_peak', sa.Float(), nullable=True),
    sa.Column('memory_sum_bytes', sa.BigInteger(), nullable=False),
    sa.Column('memory_peak_bytes', sa.BigInteger(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_util_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_busy_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('warned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stop_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('pod_uid', name=op.f('pk_gpu_session_usage'))
    )


def downgrade() -> None:
    op.drop_table('gpu_session_usage')
    with op.batch_alter_table('gpu_samples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gpu_samples_sampled_at'))

    op.drop_table('gpu_samples')
    with op.batch_alter_table('gpu_hourly', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_gpu_hourly_hour'))

    op.drop_table('gpu_hourly')
