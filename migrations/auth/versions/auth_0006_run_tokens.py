"""run tokens: a token made for one run on the hub (its Kubernetes Job reports with it)

Such a token says what it is for (`purpose`) and which run (`run_id`): it is kept out of its
account's tokens page and API listing, and revoked when its run ends.

Revision ID: auth_0006
Revises: auth_0005
"""

from alembic import op
import sqlalchemy as sa

revision = 'auth_0006'
down_revision = 'auth_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('run_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_api_tokens_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_run_id'))
        batch_op.drop_column('run_id')
        batch_op.drop_column('purpose')
