"""feed entries about executions: their own scope, and a summary for outsiders

Revision ID: dashboard_0005
Revises: dashboard_0004
"""

from alembic import op
import sqlalchemy as sa

revision = 'dashboard_0005'
down_revision = 'dashboard_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outsider_summary', sa.String(length=300), nullable=True))
    # Runs published so far follow the executions' rules too; with no summary for outsiders,
    # those who see statuses only do not see them.
    op.execute("UPDATE activity SET scope = 'executions' WHERE kind = 'execution.published'")


def downgrade() -> None:
    op.execute("UPDATE activity SET scope = 'readers' WHERE scope = 'executions'")
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_column('outsider_summary')
