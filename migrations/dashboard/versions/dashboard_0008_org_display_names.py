"""display names of orgs

Revision ID: dashboard_0008
Revises: dashboard_0007
"""

from alembic import op
import sqlalchemy as sa

revision = 'dashboard_0008'
down_revision = 'dashboard_0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orgs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('display_name', sa.String(length=100), server_default='', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('orgs', schema=None) as batch_op:
        batch_op.drop_column('display_name')
