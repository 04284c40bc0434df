"""executions by workspace and time

Revision ID: experiment_0010
Revises: experiment_0009
"""

from alembic import op

revision = 'experiment_0010'
down_revision = 'experiment_0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The runs overview reads a workspace's newest executions: the composite index serves that
    # and every lookup by workspace the single-column one served.
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.create_index('ix_executions_workspace_recent',
                              ['workspace_id', 'created_at', 'id'], unique=False)
        batch_op.drop_index('ix_executions_workspace_id')


def downgrade() -> None:
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.create_index('ix_executions_workspace_id', ['workspace_id'], unique=False)
        batch_op.drop_index('ix_executions_workspace_recent')
