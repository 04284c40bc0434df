"""experiments synced from git: a workspace's repository link, its syncs, and where each
synced experiment and version came from

Revision ID: experiment_0017
Revises: experiment_0016
"""

import sqlalchemy as sa
from alembic import op


revision = 'experiment_0017'
down_revision = 'experiment_0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('repository_links',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('workspace_id', sa.String(length=36), nullable=False),
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('branch', sa.String(length=200), nullable=False),
    sa.Column('paths', sa.JSON(), nullable=False),
    sa.Column('credential', sa.String(length=12), nullable=False),
    sa.Column('credential_sealed', sa.Text(), nullable=True),
    sa.Column('deploy_public_key', sa.Text(), nullable=True),
    sa.Column('webhook_secret_sealed', sa.Text(), nullable=False),
    sa.Column('last_synced_commit', sa.String(length=64), nullable=True),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_by_name', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repository_links')),
    sa.UniqueConstraint('workspace_id', name=op.f('uq_repository_links_workspace_id'))
    )
    op.create_table('git_syncs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('workspace_id', sa.String(length=36), nullable=False),
    sa.Column('org_id', sa.String(length=36), nullable=False),
    sa.Column('link_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('trigger', sa.String(length=10), nullable=False),
    sa.Column('run_changed', sa.Boolean(), nullable=False),
    sa.Column('requested_by', sa.String(length=36), nullable=False),
    sa.Column('requested_by_name', sa.Text(), nullable=False),
    sa.Column('delivery_id', sa.String(length=200), nullable=True),
    sa.Column('pushed_commit', sa.String(length=64), nullable=True),
    sa.Column('from_commit', sa.String(length=64), nullable=True),
    sa.Column('to_commit', sa.String(length=64), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_git_syncs')),
    sa.UniqueConstraint('link_id', 'delivery_id',
                        name=op.f('uq_git_syncs_link_id_delivery_id'))
    )
    op.create_index('ix_git_syncs_listing', 'git_syncs', ['workspace_id', 'created_at', 'id'],
                    unique=False)
    op.create_index('ix_git_syncs_status', 'git_syncs', ['status', 'created_at'],
                    unique=False)
    # Never the copy of the table SQLite's batch mode would make for the expression default:
    # dropping the old table there deletes every row that cascades from it (versions, tags,
    # contributions, executions). Adding columns and indexes needs no copy.
    with op.batch_alter_table('experiments', schema=None, recreate='never') as batch_op:
        batch_op.add_column(sa.Column('source_link_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('source_repository', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('source_path', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('source_commit', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('removed_upstream', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('depends_on', sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f('ix_experiments_source_link_id'), ['source_link_id'],
                              unique=False)
        batch_op.create_index('ix_experiments_source', ['workspace_id', 'source_path'],
                              unique=True)
    with op.batch_alter_table('experiment_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('commit_sha', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('commit_author', sa.Text(), nullable=True))


def downgrade() -> None:
    # As in upgrade: never a copy of either table, whose old one's drop would delete every row
    # that cascades from it on SQLite. Its ALTER TABLE ... DROP COLUMN (3.35) needs none, once
    # the columns' indexes are gone.
    with op.batch_alter_table('experiment_versions', schema=None,
                              recreate='never') as batch_op:
        batch_op.drop_column('commit_author')
        batch_op.drop_column('commit_sha')
    with op.batch_alter_table('experiments', schema=None, recreate='never') as batch_op:
        batch_op.drop_index('ix_experiments_source')
        batch_op.drop_index(batch_op.f('ix_experiments_source_link_id'))
        batch_op.drop_column('depends_on')
        batch_op.drop_column('removed_upstream')
        batch_op.drop_column('source_commit')
        batch_op.drop_column('source_path')
        batch_op.drop_column('source_repository')
        batch_op.drop_column('source_link_id')
    op.drop_index('ix_git_syncs_status', table_name='git_syncs')
    op.drop_index('ix_git_syncs_listing', table_name='git_syncs')
    op.drop_table('git_syncs')
    op.drop_table('repository_links')
