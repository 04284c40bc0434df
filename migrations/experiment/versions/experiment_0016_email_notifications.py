"""email notifications: a workspace's notification by mail names the members it goes to

An email notification is a row of `webhooks` with kind "email"; `recipients` holds the members
a maintainer chose (None: the members who opted in).

Revision ID: experiment_0016
Revises: experiment_0015
"""

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0016'
down_revision = 'experiment_0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipients', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('recipients')
