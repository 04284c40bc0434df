"""workers and the Chaos Toolkit extensions each has

Revision ID: experiment_0009
Revises: experiment_0008
"""

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0009'
down_revision = 'experiment_0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('run_workers',
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('extensions', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_run_workers'))
    )
    with op.batch_alter_table('run_workers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_workers_last_seen'), ['last_seen'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('run_workers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_workers_last_seen'))
    op.drop_table('run_workers')
