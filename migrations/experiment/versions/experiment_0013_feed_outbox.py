"""the outbox of feed entries waiting for dashboard

Revision ID: experiment_0013
Revises: experiment_0012
"""

import sqlalchemy as sa
from alembic import op

revision = 'experiment_0013'
down_revision = 'experiment_0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feed_outbox',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('workspace_id', sa.String(length=36), nullable=True),
    sa.Column('actor_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=True),
    sa.Column('outsider_summary', sa.Text(), nullable=True),
    sa.Column('audited', sa.JSON(), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_outbox'))
    )
    op.create_index('ix_feed_outbox_order', 'feed_outbox', ['created_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_feed_outbox_order', table_name='feed_outbox')
    op.drop_table('feed_outbox')
