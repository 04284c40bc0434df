"""idempotency keys of runs opened by clients

Revision ID: experiment_0012
Revises: experiment_0011
"""

import sqlalchemy as sa
from alembic import op

revision = 'experiment_0012'
down_revision = 'experiment_0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=200), nullable=True))
        batch_op.create_index('ix_runs_idempotency', ['created_by', 'idempotency_key'],
                              unique=True)


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_idempotency')
        batch_op.drop_column('idempotency_key')
