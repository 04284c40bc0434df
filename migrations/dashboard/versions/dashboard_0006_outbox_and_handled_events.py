"""the outbox of dashboard's events (orgs and workspaces deleted), their acknowledgements,
and the events of auth's that dashboard has handled

Revision ID: dashboard_0006
Revises: dashboard_0005
"""

from alembic import op
import sqlalchemy as sa

revision = 'dashboard_0006'
down_revision = 'dashboard_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dashboard_outbox_events',
    sa.Column('position', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=36), nullable=True),
    sa.Column('subject_kind', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('position', name=op.f('pk_dashboard_outbox_events')),
    sa.UniqueConstraint('id', name=op.f('uq_dashboard_outbox_events_id'))
    )
    op.create_table('dashboard_outbox_acks',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('subscriber', sa.String(length=40), nullable=False),
    sa.Column('acked_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', 'subscriber', name=op.f('pk_dashboard_outbox_acks'))
    )
    op.create_table('dashboard_handled_events',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_dashboard_handled_events'))
    )


def downgrade() -> None:
    op.drop_table('dashboard_handled_events')
    op.drop_table('dashboard_outbox_acks')
    op.drop_table('dashboard_outbox_events')
