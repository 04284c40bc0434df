"""request ids of runs and their events

Revision ID: experiment_0011
Revises: experiment_0010
"""

import sqlalchemy as sa
from alembic import op

revision = 'experiment_0011'
down_revision = 'experiment_0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows from before carry no id: '' says so, and every reader takes '' as "none".
    for table in ('runs', 'run_events'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('request_id', sa.String(length=128),
                                          server_default='', nullable=False))


def downgrade() -> None:
    for table in ('runs', 'run_events'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('request_id')
