"""schedule firings age index: the workers' hourly prune finds the oldest firings directly

Revision ID: experiment_0021
Revises: experiment_0020
"""

from alembic import op

revision = 'experiment_0021'
down_revision = 'experiment_0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schedule_firings', schema=None) as batch_op:
        batch_op.create_index('ix_schedule_firings_age', ['fire_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('schedule_firings', schema=None) as batch_op:
        batch_op.drop_index('ix_schedule_firings_age')
