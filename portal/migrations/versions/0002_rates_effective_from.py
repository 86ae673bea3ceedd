"""rates take effect from a day: past periods keep the prices that were in force then

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows that exist already have always applied: they take effect from the beginning.
    with op.batch_alter_table('rates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('effective_from', sa.Date(), nullable=False,
                                      server_default=sa.text("'1970-01-01'")))
        batch_op.add_column(sa.Column('updated_by', sa.String(length=255), nullable=True))
    with op.batch_alter_table('rates', schema=None) as batch_op:
        batch_op.alter_column('effective_from', server_default=None)
        batch_op.drop_constraint('pk_rates', type_='primary')
        batch_op.create_primary_key('pk_rates', ['gpu_model', 'effective_from'])


def downgrade() -> None:
    # One row per model again: the prices in force last (scheduled and past ones are dropped).
    rates = sa.table('rates', sa.column('gpu_model', sa.String()), sa.column('effective_from', sa.Date()))
    newer = rates.alias('newer')
    op.execute(rates.delete().where(sa.exists().where(
        newer.c.gpu_model == rates.c.gpu_model, newer.c.effective_from > rates.c.effective_from)))
    with op.batch_alter_table('rates', schema=None) as batch_op:
        batch_op.drop_constraint('pk_rates', type_='primary')
        batch_op.create_primary_key('pk_rates', ['gpu_model'])
    with op.batch_alter_table('rates', schema=None) as batch_op:
        batch_op.drop_column('updated_by')
        batch_op.drop_column('effective_from')
