"""workspaces' run environments, their configuration values and sealed secrets

Revision ID: experiment_0008
Revises: experiment_0007
"""

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0008'
down_revision = 'experiment_0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('run_environments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('workspace_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('name_key', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run_environments')),
    sa.UniqueConstraint('workspace_id', 'name_key', name=op.f('uq_run_environments_workspace_id_name_key'))
    )
    with op.batch_alter_table('run_environments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_environments_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('run_environment_entries',
    sa.Column('environment_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('target', sa.String(length=10), nullable=False),
    sa.Column('scope', sa.String(length=128), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('sealed', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['run_environments.id'], name=op.f('fk_run_environment_entries_environment_id_run_environments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('environment_id', 'name', name=op.f('pk_run_environment_entries'))
    )


def downgrade() -> None:
    op.drop_table('run_environment_entries')
    with op.batch_alter_table('run_environments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_environments_workspace_id'))

    op.drop_table('run_environments')
