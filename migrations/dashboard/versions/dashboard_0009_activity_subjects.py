"""what each feed entry is about, for its link

Revision ID: dashboard_0009
Revises: dashboard_0008
"""

from alembic import op
import sqlalchemy as sa

revision = 'dashboard_0009'
down_revision = 'dashboard_0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries made before it link to their workspace or org: their summary alone tells the rest.
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_column('subject')
