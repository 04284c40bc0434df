"""no executions outcome index: nothing looks executions up by their outcome alone

Every query on outcomes starts from an experiment, a workspace or a run (indexed); the index
only cost every publish one more entry to write.

Revision ID: experiment_0020
Revises: experiment_0019
"""

from alembic import op

revision = 'experiment_0020'
down_revision = 'experiment_0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.drop_index('ix_executions_outcome')


def downgrade() -> None:
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.create_index('ix_executions_outcome', ['outcome'], unique=False)
