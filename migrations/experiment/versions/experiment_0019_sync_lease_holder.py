"""sync lease holder: who holds a running sync's lease, and how many times it was taken

A worker that lost a sync's lease writes nothing; a sync taken too often without ending fails.

Revision ID: experiment_0019
Revises: experiment_0018
"""

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0019'
down_revision = 'experiment_0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('git_syncs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('worker', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0',
                                      nullable=False))


def downgrade() -> None:
    # No table cascades from git_syncs: SQLite's copy of it loses nothing.
    with op.batch_alter_table('git_syncs', schema=None) as batch_op:
        batch_op.drop_column('attempts')
        batch_op.drop_column('worker')
