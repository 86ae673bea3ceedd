"""browser sessions are kept server-side (portal_sessions), so that signing out ends them; users may have
a budget in money (users.budget_monthly); one user's days are read through an index (usage_daily)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('budget_monthly', sa.Float(), nullable=True))
    with op.batch_alter_table('usage_daily', schema=None) as batch_op:
        batch_op.create_index('ix_usage_daily_user_name_day', ['user_name', 'day'], unique=False)
    op.create_table('portal_sessions',
    sa.Column('id_sha256', sa.String(length=64), nullable=False),
    sa.Column('user_name', sa.String(length=255), nullable=False),
    sa.Column('admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id_sha256', name=op.f('pk_portal_sessions'))
    )
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_portal_sessions_user_name'), ['user_name'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('usage_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_daily_user_name_day')
    with op.batch_alter_table('portal_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_sessions_user_name'))
        batch_op.drop_index(batch_op.f('ix_portal_sessions_expires_at'))
    op.drop_table('portal_sessions')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('budget_monthly')
