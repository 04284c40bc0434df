"""run policies of workspaces and kill switches of orgs

Revision ID: dashboard_0007
Revises: dashboard_0006
"""

from alembic import op
import sqlalchemy as sa

revision = 'dashboard_0007'
down_revision = 'dashboard_0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orgs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kill_switch_engaged', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('kill_switch_reason', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('kill_switch_by_name', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('kill_switch_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run_policy', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('run_policy')
    with op.batch_alter_table('orgs', schema=None) as batch_op:
        for column in ('kill_switch_at', 'kill_switch_by_name', 'kill_switch_reason',
                       'kill_switch_engaged'):
            batch_op.drop_column(column)
