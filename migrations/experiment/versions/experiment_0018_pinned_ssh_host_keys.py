"""pinned ssh host keys: the host key(s) a repository link's first ssh fetch met

Every worker gives ssh these keys, not a known_hosts file of its own; None: none pinned yet.

Revision ID: experiment_0018
Revises: experiment_0017
"""

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0018'
down_revision = 'experiment_0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('repository_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('host_keys', sa.Text(), nullable=True))


def downgrade() -> None:
    # No table cascades from repository_links: SQLite's copy of it loses nothing.
    with op.batch_alter_table('repository_links', schema=None) as batch_op:
        batch_op.drop_column('host_keys')
