"""the contributions of each experiment, for listings to filter by

Revision ID: experiment_0005
Revises: experiment_0004
"""

from alembic import op
import sqlalchemy as sa

revision = 'experiment_0005'
down_revision = 'experiment_0004'
branch_labels = None
depends_on = None

NAME_MAX = 200


def upgrade() -> None:
    op.create_table('experiment_contributions',
    sa.Column('experiment_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'], name=op.f('fk_experiment_contributions_experiment_id_experiments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('experiment_id', 'name', name=op.f('pk_experiment_contributions'))
    )
    with op.batch_alter_table('experiment_contributions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiment_contributions_name'), ['name'], unique=False)

    _contributions()


def downgrade() -> None:
    with op.batch_alter_table('experiment_contributions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiment_contributions_name'))

    op.drop_table('experiment_contributions')


def _contributions() -> None:
    # The rows the service now keeps on every write, for the experiments already there: the
    # latest document's contributions by lower-cased name (as store.contributions makes them).
    experiments = sa.table("experiments", sa.column("id"), sa.column("document", sa.JSON()))
    contributions = sa.table("experiment_contributions", sa.column("experiment_id"),
                             sa.column("name"), sa.column("level"))
    connection = op.get_bind()
    for experiment_id, document in connection.execute(
            sa.select(experiments.c.id, experiments.c.document)):
        found = document.get("contributions") if isinstance(document, dict) else None
        if not isinstance(found, dict):
            continue
        named = {name.replace("\x00", "")[:NAME_MAX].lower(): level
                 for name, level in found.items()
                 if isinstance(name, str) and isinstance(level, str)}
        rows = [{"experiment_id": experiment_id, "name": name, "level": level[:10]}
                for name, level in named.items() if name]
        if rows:
            connection.execute(contributions.insert(), rows)
