"""The runs of a workspace that are queued or running, with the titles of their experiments:
what its page shows as in progress before any journal arrives."""

from __future__ import annotations

from sqlalchemy import select

from chaoshub.core.db import transaction
from chaoshub.core.schemas import Frozen
from chaoshub.experiment.models import Experiment, Run
from chaoshub.experiment.runs import RunView

SERVICE = "experiment"
ACTIVE = ("queued", "running")
SHOWN = 20


class ActiveRun(Frozen):
    """A run in progress and the title of its experiment."""

    run: RunView
    title: str


def in_workspace(workspace_id: str, limit: int = SHOWN) -> list[tuple[Run, str]]:
    """Up to `limit` queued or running runs of the workspace, newest first, each with its
    experiment's title; detached."""
    with transaction(SERVICE) as session:
        rows = list(session.execute(
            select(Run, Experiment.title).join(Experiment, Experiment.id == Run.experiment_id)
            .where(Run.workspace_id == workspace_id, Run.status.in_(ACTIVE))
            .order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)))
        session.expunge_all()
        return [(run, title) for run, title in rows]
