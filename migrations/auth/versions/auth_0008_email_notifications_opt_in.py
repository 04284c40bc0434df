"""email notifications: an account opts in to its workspaces' notifications by mail

Revision ID: auth_0008
Revises: auth_0007
"""

from alembic import op
import sqlalchemy as sa

revision = 'auth_0008'
down_revision = 'auth_0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch operation would copy `accounts` on SQLite, and dropping the
    # old table there deletes every row that refers to it (ON DELETE CASCADE).
    op.add_column('accounts', sa.Column('email_notifications', sa.Boolean(), nullable=False,
                                        server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('email_notifications')
