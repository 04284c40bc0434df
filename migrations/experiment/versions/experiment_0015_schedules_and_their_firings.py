"""schedules of experiments and what each firing did

Revision ID: experiment_0015
Revises: experiment_0014
"""

import sqlalchemy as sa
from alembic import op


revision = 'experiment_0015'
down_revision = 'experiment_0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('schedules',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('experiment_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('cron', sa.String(length=200), nullable=True),
    sa.Column('once_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('time_zone', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('missed', sa.String(length=10), nullable=False),
    sa.Column('overlap', sa.String(length=10), nullable=False),
    sa.Column('next_fire_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=36), nullable=False),
    sa.Column('created_by_name', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['experiment_id'], ['experiments.id'],
                            name=op.f('fk_schedules_experiment_id_experiments'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedules'))
    )
    op.create_index('ix_schedules_due', 'schedules', ['enabled', 'next_fire_at'], unique=False)
    op.create_index(op.f('ix_schedules_experiment_id'), 'schedules', ['experiment_id'],
                    unique=False)
    op.create_table('schedule_firings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('schedule_id', sa.String(length=36), nullable=False),
    sa.Column('fire_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['schedule_id'], ['schedules.id'],
                            name=op.f('fk_schedule_firings_schedule_id_schedules'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_firings')),
    sa.UniqueConstraint('schedule_id', 'fire_at',
                        name=op.f('uq_schedule_firings_schedule_id_fire_at'))
    )
    op.create_index('ix_schedule_firings_listing', 'schedule_firings',
                    ['schedule_id', 'fire_at'], unique=False)
    op.create_index('ix_schedule_firings_waiting', 'schedule_firings', ['outcome'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_schedule_firings_waiting', table_name='schedule_firings')
    op.drop_index('ix_schedule_firings_listing', table_name='schedule_firings')
    op.drop_table('schedule_firings')
    op.drop_index(op.f('ix_schedules_experiment_id'), table_name='schedules')
    op.drop_index('ix_schedules_due', table_name='schedules')
    op.drop_table('schedules')
