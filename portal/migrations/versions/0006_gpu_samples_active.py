"""GPU samples carry the agent's activity flag of a MIG slice without a utilisation reading
(gpu_samples.active: MIG slices on GPUs without GPM, e.g. A100)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('gpu_samples', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('gpu_samples', schema=None) as batch_op:
        batch_op.drop_column('active')
