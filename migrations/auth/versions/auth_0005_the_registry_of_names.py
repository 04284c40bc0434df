"""the registry of names: usernames and org names share one namespace of URLs

Revision ID: auth_0005
Revises: auth_0004
"""

from alembic import op
import sqlalchemy as sa

revision = 'auth_0005'
down_revision = 'auth_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('auth_names',
    sa.Column('name_key', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('owner_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('name_key', name=op.f('pk_auth_names'))
    )
    op.create_index(op.f('ix_auth_names_owner_id'), 'auth_names', ['owner_id'], unique=False)
    # The accounts' names are here; the orgs' are dashboard's to reserve (it does on start-up).
    op.execute("INSERT INTO auth_names (name_key, kind, owner_id) "
               "SELECT username_key, 'account', id FROM accounts")


def downgrade() -> None:
    op.drop_index(op.f('ix_auth_names_owner_id'), table_name='auth_names')
    op.drop_table('auth_names')
