"""The last run of each experiment, kept on its row so listings filter and sort without a join.

An experiment's last run is its most recently published execution (newest `created_at`, then
highest id): the one its executions list shows first. Publishing a journal of an older run
still makes it the last one, as it is the latest the hub has heard of.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, case, or_, update
from sqlalchemy.orm import Session

from chaoshub.experiment.models import Experiment


def _statement():
    # The table's own UPDATE, not the ORM's: nothing is synchronized, and the ORM's bulk UPDATE
    # costs more to set up than the statement does to run.
    table = Experiment.__table__
    at, last_id, last_outcome = (table.c.last_run_at, table.c.last_execution_id,
                                 table.c.last_run_outcome)
    created_at = bindparam("run_at", type_=at.type)
    execution_id = bindparam("run_id", type_=last_id.type)
    later = or_(at.is_(None), at < created_at, and_(at == created_at, last_id < execution_id))

    def unless_later(value, column):
        return case((later, value), else_=column)

    # One statement locks the row, checks where it lives and keeps the last run. The condition
    # sits in the UPDATE itself: of two publishes racing on one experiment, the later execution
    # wins whichever transaction commits last (PostgreSQL re-reads the row it waited for).
    return (update(table)
            .where(table.c.id == bindparam("experiment"),
                   table.c.workspace_id == bindparam("workspace"))
            .values(last_run_at=unless_later(created_at, at),
                    last_run_outcome=unless_later(
                        bindparam("run_outcome", type_=last_outcome.type), last_outcome),
                    last_execution_id=unless_later(execution_id, last_id))
            .returning(table.c.version))


# Built once: putting its expressions together again for every publish cost more than its
# round trip.
_RECORD = _statement()


def record(session: Session, experiment_id: str, workspace_id: str, execution_id: str,
           created_at: datetime, outcome: str) -> int | None:
    """Make a new execution its experiment's last run unless a later one is there already,
    locking the experiment's row if it lives in `workspace_id`: its latest version number, or
    None when it is not there (gone, or moved since the caller was authorized)."""
    return session.scalar(_RECORD, {"experiment": experiment_id, "workspace": workspace_id,
                                    "run_id": execution_id, "run_at": created_at,
                                    "run_outcome": outcome})
