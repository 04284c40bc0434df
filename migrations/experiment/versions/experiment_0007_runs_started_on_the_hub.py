"""runs started on the hub: origin, pinned version, options, worker, lease and reason

Revision ID: experiment_0007
Revises: experiment_0006
"""

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0007'
down_revision = 'experiment_0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin', sa.String(length=10), server_default='client', nullable=False))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('options', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('worker', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.Text(), server_default='', nullable=False))
        batch_op.create_index('ix_runs_status', ['status', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_status')
        for column in ('reason', 'lease_until', 'started_at', 'worker', 'options', 'version',
                       'origin'):
            batch_op.drop_column(column)
