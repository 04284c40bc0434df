"""org profiles, former names and outsider executions

Revision ID: dashboard_0002
Revises: dashboard_0001
"""

from alembic import op
import sqlalchemy as sa

revision = 'dashboard_0002'
down_revision = 'dashboard_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('org_former_names',
    sa.Column('name_key', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('renamed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_org_former_names_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('name_key', name=op.f('pk_org_former_names'))
    )
    with op.batch_alter_table('org_former_names', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_org_former_names_org_id'), ['org_id'], unique=False)

    with op.batch_alter_table('orgs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('description', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('url', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=200), nullable=True))

    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('username', sa.String(length=40), server_default='', nullable=False))

    # Every account so far got its personal org named after its username.
    op.execute(
        "UPDATE profiles SET username = COALESCE((SELECT orgs.name FROM orgs"
        " JOIN org_members ON org_members.org_id = orgs.id"
        " WHERE orgs.personal AND org_members.account_id = profiles.account_id), '')"
    )

    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outsider_executions', sa.String(length=16), server_default='none', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('outsider_executions')

    with op.batch_alter_table('profiles', schema=None) as batch_op:
        batch_op.drop_column('username')

    with op.batch_alter_table('orgs', schema=None) as batch_op:
        batch_op.drop_column('email')
        batch_op.drop_column('url')
        batch_op.drop_column('description')

    with op.batch_alter_table('org_former_names', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_org_former_names_org_id'))

    op.drop_table('org_former_names')
