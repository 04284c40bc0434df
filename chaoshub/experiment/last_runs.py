"""The last run of each experiment, kept on its row so listings filter and sort without a join.

An experiment's last run is its most recently published execution (newest `created_at`, then
highest id): the one its executions list shows first. Publishing a journal of an older run
still makes it the last one, as it is the latest the hub has heard of.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, literal, or_, update
from sqlalchemy.orm import Session

from chaoshub.experiment.models import Experiment


def record(session: Session, experiment_id: str, workspace_id: str, execution_id: str,
           created_at: datetime, outcome: str) -> int | None:
    """Make a new execution its experiment's last run unless a later one is there already,
    locking the experiment's row if it lives in `workspace_id`: its latest version number, or
    None when it is not there (gone, or moved since the caller was authorized)."""
    at = Experiment.last_run_at
    later = or_(at.is_(None), at < created_at,
                and_(at == created_at, Experiment.last_execution_id < execution_id))

    def unless_later(value, column):
        return case((later, literal(value, column.type)), else_=column)

    # One statement locks the row, checks where it lives and keeps the last run. The condition
    # sits in the UPDATE itself: of two publishes racing on one experiment, the later execution
    # wins whichever transaction commits last (PostgreSQL re-reads the row it waited for).
    return session.scalar(
        update(Experiment)
        .where(Experiment.id == experiment_id, Experiment.workspace_id == workspace_id)
        .values(last_run_at=unless_later(created_at, at),
                last_run_outcome=unless_later(outcome, Experiment.last_run_outcome),
                last_execution_id=unless_later(execution_id, Experiment.last_execution_id))
        .returning(Experiment.version)
        .execution_options(synchronize_session=False))
