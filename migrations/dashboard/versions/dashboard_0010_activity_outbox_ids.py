"""the outbox id of each feed entry another service asked for

Revision ID: dashboard_0010
Revises: dashboard_0009
"""

from alembic import op
import sqlalchemy as sa

revision = 'dashboard_0010'
down_revision = 'dashboard_0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries made before it have none: they were written once, in the request that made them.
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outbox_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_activity_outbox_id'), ['outbox_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_outbox_id'))
        batch_op.drop_column('outbox_id')
