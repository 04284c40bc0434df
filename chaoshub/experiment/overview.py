"""How someone's runs are doing across the workspaces they work in: the newest runs, the runs in
progress, what deviated this week and what has not run for a month."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.core.schemas import Frozen
from chaoshub.experiment import active_runs, runs, store, trends
from chaoshub.experiment.models import Execution, Experiment, Run
from chaoshub.experiment.runs import RunView
from chaoshub.experiment.schemas import ExecutionView

SERVICE = "experiment"
SHOWN = 10  # rows in each part of the overview
WORKSPACES = 100  # the most workspaces an overview looks into (the user's first ones)
DEVIATED_SINCE = timedelta(days=7)
QUIET_SINCE = timedelta(days=trends.STALE_DAYS)  # what trends list as stale


class Place(Frozen):
    """A workspace the overview looks into, and its org, by name."""

    id: str
    org: str
    workspace: str


class RunSeen(Frozen):
    """A published run (its execution) and where it belongs."""

    execution: ExecutionView
    title: str
    org: str
    workspace: str


class RunGoing(Frozen):
    """A run queued or running, and where it belongs."""

    run: RunView
    title: str


class QuietExperiment(Frozen):
    """An experiment that has not run for a while (or never), and where it belongs."""

    id: str
    title: str
    org: str
    workspace: str
    last_run_at: datetime | None
    last_run_outcome: str | None


class Overview(Frozen):
    """The four parts of the overview, newest first (the quiet ones longest quiet first)."""

    recent: list[RunSeen]
    deviated: list[RunSeen]
    in_progress: list[RunGoing]
    quiet: list[QuietExperiment]
    workspaces: int
    since_deviated: datetime
    since_quiet: datetime


def gather(places: list[Place], now: datetime | None = None) -> Overview:
    """The overview of these workspaces (all of whose runs the caller may see in full)."""
    now = now or utcnow()
    places = places[:WORKSPACES]
    where = {p.id: p for p in places}
    deviated_since, quiet_since = now - DEVIATED_SINCE, now - QUIET_SINCE
    with transaction(SERVICE) as session:
        recent = _newest(session, where, [])
        deviated = _newest(session, where, [Execution.outcome != "passed",
                                            Execution.created_at >= deviated_since])
        going = [] if not where else list(session.execute(
            select(Run, Experiment.title).join(Experiment, Experiment.id == Run.experiment_id)
            .where(Run.workspace_id.in_(where), Run.status.in_(active_runs.ACTIVE))
            .order_by(Run.created_at.desc(), Run.id.desc()).limit(SHOWN)))
        quiet = _quiet(session, where, quiet_since)
        return Overview(
            recent=recent, deviated=deviated,
            in_progress=[RunGoing(run=runs.run_view(run, where[run.workspace_id].org,
                                                    where[run.workspace_id].workspace, []),
                                  title=title) for run, title in going],
            quiet=quiet, workspaces=len(places), since_deviated=deviated_since,
            since_quiet=quiet_since)


def _newest(session: Session, where: dict[str, Place], conditions: list) -> list[RunSeen]:
    # Workspace by workspace, each from its own index range: an IN over many workspaces would
    # read and sort every execution of all of them to keep ten.
    found: list[tuple[Execution, str]] = []
    for workspace_id in where:
        found += session.execute(
            select(Execution, Experiment.title)
            .join(Experiment, Experiment.id == Execution.experiment_id)
            .where(Execution.workspace_id == workspace_id, *conditions)
            .order_by(Execution.created_at.desc(), Execution.id.desc()).limit(SHOWN)).all()
    found.sort(key=lambda row: (row[0].created_at, row[0].id), reverse=True)
    return [RunSeen(execution=store.execution_view(row), title=title,
                    org=where[row.workspace_id].org, workspace=where[row.workspace_id].workspace)
            for row, title in found[:SHOWN]]


def _quiet(session: Session, where: dict[str, Place], since: datetime
           ) -> list[QuietExperiment]:
    found: list[Experiment] = []
    for workspace_id in where:
        # Never run first (NULL sorts first ascending on SQLite, last on PostgreSQL: two reads).
        never = select(Experiment).where(Experiment.workspace_id == workspace_id,
                                         Experiment.last_run_at.is_(None))
        found += session.scalars(never.order_by(Experiment.created_at, Experiment.id)
                                 .limit(SHOWN)).all()
        found += session.scalars(
            select(Experiment).where(Experiment.workspace_id == workspace_id,
                                     Experiment.last_run_at < since)
            .order_by(Experiment.last_run_at, Experiment.id).limit(SHOWN)).all()
    found.sort(key=lambda e: (e.last_run_at is not None, e.last_run_at or e.created_at))
    return [QuietExperiment(id=e.id, title=e.title, org=where[e.workspace_id].org,
                            workspace=where[e.workspace_id].workspace,
                            last_run_at=e.last_run_at, last_run_outcome=e.last_run_outcome)
            for e in found[:SHOWN]]
