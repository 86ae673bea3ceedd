"""audit_log.id is INTEGER on SQLite, so that it numbers itself there (BIGINT on PostgreSQL, unchanged)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 06:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table('audit_log', schema=None, recreate='always') as batch_op:
        batch_op.alter_column('id', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table('audit_log', schema=None, recreate='always') as batch_op:
        batch_op.alter_column('id', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)
