"""workspace members: a role in one workspace

Revision ID: dashboard_0004
Revises: dashboard_0003
"""

from alembic import op
import sqlalchemy as sa

revision = 'dashboard_0004'
down_revision = 'dashboard_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workspace_members',
    sa.Column('workspace_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], name=op.f('fk_workspace_members_workspace_id_workspaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace_id', 'account_id', name=op.f('pk_workspace_members'))
    )
    with op.batch_alter_table('workspace_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workspace_members_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('workspace_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workspace_members_account_id'))

    op.drop_table('workspace_members')
