"""The last run of each experiment, kept on its row so listings filter and sort without a join.

An experiment's last run is its most recently published execution (newest `created_at`, then
highest id): the one its executions list shows first. Publishing a journal of an older run
still makes it the last one, as it is the latest the hub has heard of.
"""

from __future__ import annotations

from sqlalchemy import and_, or_, update
from sqlalchemy.orm import Session

from chaoshub.experiment.models import Execution, Experiment


def record(session: Session, execution: Execution) -> None:
    """Make `execution` its experiment's last run, unless a later one is there already."""
    at = Experiment.last_run_at
    later = or_(at.is_(None), at < execution.created_at,
                and_(at == execution.created_at, Experiment.last_execution_id < execution.id))
    # The condition sits in the UPDATE itself: of two publishes racing on one experiment, the
    # later execution wins whichever transaction commits last (PostgreSQL re-checks the WHERE
    # on the row it waited for).
    session.execute(
        update(Experiment)
        .where(Experiment.id == execution.experiment_id, later)
        .values(last_run_at=execution.created_at, last_run_outcome=execution.outcome,
                last_execution_id=execution.id)
        .execution_options(synchronize_session=False))

