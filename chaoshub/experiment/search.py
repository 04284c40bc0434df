"""Search's experiment half: experiments by title or tag, and runs (executions) by id or by the
title of what they ran, in the workspaces the reader may see; dashboard says which those are."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, union
from sqlalchemy.orm import Session

from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.schemas import Frozen
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.service import WorkspaceSight
from chaoshub.experiment.models import Execution, Experiment, ExperimentTag
from chaoshub.experiment.presenters import experiment_path

SERVICE = "experiment"
MAX_LIMIT = 50
MAX_QUERY = 40  # as dashboard's search: a prefix, not a document
# The most workspaces holding a match asked about at once (dashboard looks at no more): those
# with the most recently updated matches first.
CANDIDATE_WORKSPACES = 500
EXPERIMENTS_READ_SCOPE = "experiments:read"
EXECUTIONS_READ_SCOPE = "executions:read"


class FoundExperiment(Frozen):
    """An experiment whose title (or a word of it) or one of whose tags starts with the query."""

    id: str
    title: str
    tags: list[str]
    org: str
    workspace: str
    url: str


class FoundRun(Frozen):
    """A run (execution) whose id starts or ends with the query, or whose experiment's title
    starts with it."""

    id: str
    experiment_id: str
    title: str
    outcome: str
    created_at: datetime
    org: str
    workspace: str
    url: str


class ExperimentResults(Frozen):
    """What a search found of experiments and runs, newest first."""

    experiments: list[FoundExperiment] = []
    runs: list[FoundRun] = []


def find(claim: str, user: UserClaim, q: str, limit: int) -> ExperimentResults:
    """Experiments and runs matching `q` (any case) that the reader may see, at most `limit`
    of each."""
    prefix = (q or "").strip().lower()[:MAX_QUERY]
    experiments_read = user.anonymous or user.allows(EXPERIMENTS_READ_SCOPE)
    if not prefix or not experiments_read:
        return ExperimentResults()
    # A run shows its experiment's title: it needs both scopes.
    runs_read = user.anonymous or user.allows(EXECUTIONS_READ_SCOPE)
    limit = max(1, min(limit or 10, MAX_LIMIT))
    pattern = _escaped(prefix) + "%"
    with transaction(SERVICE) as session:
        candidates = _candidate_workspaces(session, pattern, runs_read)
    # Asked outside the transaction: the call may go to another process.
    seen = {s.id: s for s in dashboard.workspace_sights(claim, candidates)} if candidates else {}
    if user.workspace:  # an API token kept to one workspace (dashboard checks it too)
        seen = {key: s for key, s in seen.items() if key == user.workspace}
    if not seen:
        return ExperimentResults()
    # Outsiders see runs only where the workspace shows them their statuses at least.
    with_runs = [key for key, s in seen.items() if s.executions != "none"] if runs_read else []
    with transaction(SERVICE) as session:
        return ExperimentResults(experiments=_experiments(session, pattern, seen, limit),
                                 runs=_runs(session, pattern, with_runs, seen, limit))


def _title_matches(pattern: str) -> ColumnElement[bool]:
    # The start of the title, or of any word of it.
    title = func.lower(Experiment.title)
    return or_(*(title.like(before + pattern, escape="\\") for before in ("", "% ")))


def _id_matches(pattern: str) -> ColumnElement[bool]:
    # The start of a run's id is when it was published, the same for every run of a minute:
    # its end tells it apart (the results show it), and is found too.
    run_id = func.lower(Execution.id)
    return or_(run_id.like(pattern, escape="\\"),
               run_id.like("%" + pattern.removesuffix("%"), escape="\\"))


def _tag_matches(pattern: str) -> ColumnElement[bool]:
    return Experiment.id.in_(select(ExperimentTag.experiment_id).where(
        func.lower(ExperimentTag.tag).like(pattern, escape="\\")))


def _candidate_workspaces(session: Session, pattern: str, runs_read: bool) -> list[str]:
    """The workspaces holding a match, whoever may see them."""
    matches = [select(Experiment.workspace_id.label("workspace_id"),
                      Experiment.updated_at.label("at"))
               .where(or_(_title_matches(pattern), _tag_matches(pattern)))]
    if runs_read:
        matches.append(select(Execution.workspace_id.label("workspace_id"),
                              Execution.created_at.label("at"))
                       .where(_id_matches(pattern)))
    found = union(*matches).subquery() if len(matches) > 1 else matches[0].subquery()
    newest = func.max(found.c.at)
    return list(session.scalars(select(found.c.workspace_id).group_by(found.c.workspace_id)
                                .order_by(newest.desc()).limit(CANDIDATE_WORKSPACES)))


def _experiments(session: Session, pattern: str, seen: dict[str, WorkspaceSight],
                 limit: int) -> list[FoundExperiment]:
    rows = session.scalars(
        select(Experiment)
        .where(Experiment.workspace_id.in_(list(seen)),
               or_(_title_matches(pattern), _tag_matches(pattern)))
        .order_by(Experiment.updated_at.desc(), Experiment.id).limit(limit))
    found = []
    for row in rows:
        where = seen[row.workspace_id]
        found.append(FoundExperiment(
            id=row.id, title=row.title, tags=list(row.tags or []), org=where.org_name,
            workspace=where.name, url=experiment_path(where.org_name, where.name, row.id)))
    return found


def _runs(session: Session, pattern: str, workspace_ids: list[str],
          seen: dict[str, WorkspaceSight], limit: int) -> list[FoundRun]:
    if not workspace_ids:
        return []
    rows = session.execute(
        select(Execution.id, Execution.experiment_id, Execution.workspace_id,
               Execution.outcome, Execution.created_at, Experiment.title)
        .join(Experiment, Experiment.id == Execution.experiment_id)
        .where(Execution.workspace_id.in_(workspace_ids),
               or_(_id_matches(pattern), _title_matches(pattern)))
        .order_by(Execution.created_at.desc(), Execution.id).limit(limit)).all()
    found = []
    for row in rows:
        where = seen[row.workspace_id]
        base = experiment_path(where.org_name, where.name, row.experiment_id)
        found.append(FoundRun(
            id=row.id, experiment_id=row.experiment_id, title=row.title, outcome=row.outcome,
            created_at=row.created_at, org=where.org_name, workspace=where.name,
            url=f"{base}/execution/{row.id}"))
    return found


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
