"""the last run of each experiment

Revision ID: experiment_0004
Revises: experiment_0003
"""

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0004'
down_revision = 'experiment_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_run_outcome', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('last_execution_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_experiments_last_run', ['workspace_id', 'last_run_at', 'id'], unique=False)

    _last_runs()


def downgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_index('ix_experiments_last_run')
        batch_op.drop_column('last_execution_id')
        batch_op.drop_column('last_run_outcome')
        batch_op.drop_column('last_run_at')


def _last_runs() -> None:
    # Each experiment's last run is its most recently published execution, as the service
    # keeps it from now on (newest created_at, then highest id): two statements that every
    # database runs, the first picking the execution, the second copying its facts.
    experiments = sa.table("experiments", sa.column("id"), sa.column("last_execution_id"),
                           sa.column("last_run_at", sa.DateTime(timezone=True)),
                           sa.column("last_run_outcome"))
    executions = sa.table("executions", sa.column("id"), sa.column("experiment_id"),
                          sa.column("outcome"),
                          sa.column("created_at", sa.DateTime(timezone=True)))
    latest = (sa.select(executions.c.id)
              .where(executions.c.experiment_id == experiments.c.id)
              .order_by(executions.c.created_at.desc(), executions.c.id.desc())
              .limit(1).scalar_subquery())
    op.execute(experiments.update().values(last_execution_id=latest))

    def fact(column):
        return (sa.select(column).where(executions.c.id == experiments.c.last_execution_id)
                .scalar_subquery())

    op.execute(experiments.update()
               .where(experiments.c.last_execution_id.is_not(None))
               .values(last_run_at=fact(executions.c.created_at),
                       last_run_outcome=fact(executions.c.outcome)))
