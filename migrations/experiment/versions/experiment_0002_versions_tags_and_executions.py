"""versions, tags and executions

Revision ID: experiment_0002
Revises: experiment_0001
"""

import hashlib
import json
import uuid

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0002'
down_revision = 'experiment_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('executions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('experiment_id', sa.String(length=36), nullable=False),
    sa.Column('workspace_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('deviated', sa.Boolean(), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('node', sa.Text(), nullable=False),
    sa.Column('published_by', sa.String(length=36), nullable=False),
    sa.Column('published_by_name', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_executions_experiment_id_experiments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_executions')),
    sa.UniqueConstraint('experiment_id', 'content_hash', name=op.f('uq_executions_experiment_id_content_hash')),
    sa.UniqueConstraint('experiment_id', 'idempotency_key', name=op.f('uq_executions_experiment_id_idempotency_key'))
    )
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.create_index('ix_executions_listing', ['experiment_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_executions_outcome'), ['outcome'], unique=False)
        batch_op.create_index(batch_op.f('ix_executions_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('experiment_tags',
    sa.Column('experiment_id', sa.String(length=36), nullable=False),
    sa.Column('tag', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_experiment_tags_experiment_id_experiments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('experiment_id', 'tag', name=op.f('pk_experiment_tags'))
    )
    with op.batch_alter_table('experiment_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiment_tags_tag'), ['tag'], unique=False)

    op.create_table('experiment_versions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('experiment_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('author', sa.String(length=36), nullable=False),
    sa.Column('author_name', sa.Text(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_experiment_versions_experiment_id_experiments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiment_versions')),
    sa.UniqueConstraint('experiment_id', 'number', name=op.f('uq_experiment_versions_experiment_id_number'))
    )
    with op.batch_alter_table('experiment_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiment_versions_content_hash'), ['content_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_experiment_versions_experiment_id'), ['experiment_id'], unique=False)

    op.create_table('execution_activities',
    sa.Column('execution_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('phase', sa.String(length=20), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('tolerance_met', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['execution_id'], ['executions.id'], name=op.f('fk_execution_activities_execution_id_executions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('execution_id', 'position', name=op.f('pk_execution_activities'))
    )
    op.create_table('execution_journals',
    sa.Column('execution_id', sa.String(length=36), nullable=False),
    sa.Column('journal', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['execution_id'], ['executions.id'], name=op.f('fk_execution_journals_execution_id_executions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('execution_id', name=op.f('pk_execution_journals'))
    )
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index('ix_experiments_listing', ['workspace_id', 'updated_at', 'id'], unique=False)

    _first_versions()



def downgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_index('ix_experiments_listing')
        batch_op.drop_column('version')

    op.drop_table('execution_journals')
    op.drop_table('execution_activities')
    with op.batch_alter_table('experiment_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiment_versions_experiment_id'))
        batch_op.drop_index(batch_op.f('ix_experiment_versions_content_hash'))

    op.drop_table('experiment_versions')
    with op.batch_alter_table('experiment_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiment_tags_tag'))

    op.drop_table('experiment_tags')
    with op.batch_alter_table('executions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_executions_workspace_id'))
        batch_op.drop_index(batch_op.f('ix_executions_outcome'))
        batch_op.drop_index('ix_executions_listing')

    op.drop_table('executions')


def _first_versions() -> None:
    # Experiments stored before versions existed become version 1 of themselves.
    experiments = sa.table("experiments", sa.column("id"), sa.column("tags", sa.JSON),
                           sa.column("document", sa.JSON), sa.column("created_by"),
                           sa.column("created_at", sa.DateTime(timezone=True)))
    versions = sa.table("experiment_versions", sa.column("id"), sa.column("experiment_id"),
                        sa.column("number"), sa.column("content_hash"),
                        sa.column("document", sa.JSON), sa.column("author"),
                        sa.column("author_name"), sa.column("message"),
                        sa.column("created_at", sa.DateTime(timezone=True)))
    tags = sa.table("experiment_tags", sa.column("experiment_id"), sa.column("tag"))
    connection = op.get_bind()
    for row in connection.execute(sa.select(experiments)).mappings():
        canonical = json.dumps(row["document"], sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False, default=str)
        connection.execute(versions.insert().values(
            id=str(uuid.uuid4()), experiment_id=row["id"], number=1,
            content_hash=hashlib.sha256(canonical.encode()).hexdigest(),
            document=row["document"], author=row["created_by"], author_name="",
            message="created", created_at=row["created_at"]))
        for tag in dict.fromkeys(t[:200] for t in row["tags"] or [] if t):
            connection.execute(tags.insert().values(experiment_id=row["id"], tag=tag))
