"""the events of dashboard's that experiment has handled

Revision ID: experiment_0006
Revises: experiment_0005
"""

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0006'
down_revision = 'experiment_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('experiment_handled_events',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_experiment_handled_events'))
    )


def downgrade() -> None:
    op.drop_table('experiment_handled_events')
