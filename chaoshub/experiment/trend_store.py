"""What trends read of the experiment database: runs by UTC day and outcome, each experiment's
runs in the window by outcome, and the latest runs with a verdict of those that may have
flipped, all counted by the database (GROUP BY) from the workspace-and-time indexes."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chaoshub.core.db import transaction
from chaoshub.experiment import trends
from chaoshub.experiment.models import Execution, Experiment, Run
from chaoshub.experiment.overview import Place

SERVICE = "experiment"
# Hub runs that ended with no journal (a worker lost, stopped before it wrote one) still
# count in the chart, under their status; refused runs never ran.
UNJOURNALED = trends.STOPPED


def figures(places: list[Place], now: datetime) -> trends.Trends:
    """The trends of these workspaces (whose runs the caller may see) at `now`."""
    where = {p.id: p for p in places}
    since = trends.window_start(now)
    if not where:
        return trends.gather([], [], now)
    with transaction(SERVICE) as session:
        days = _by_day(session, list(where), since)
        experiments = _experiments(session, where, since)
    return trends.gather(days, experiments, now)


def utc_day(session: Session, column):
    """The UTC day of a timestamp column, as the database counts it."""
    if session.get_bind().dialect.name == "postgresql":
        # timestamptz: the session's time zone must not decide the day.
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite keeps UTC text: its first ten characters


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _by_day(session: Session, ids: list[str], since: datetime) -> list[trends.DayCount]:
    day = utc_day(session, Execution.created_at)
    rows = session.execute(
        select(day, Execution.outcome, func.count())
        .where(Execution.workspace_id.in_(ids), Execution.created_at >= since)
        .group_by(day, Execution.outcome)).all()
    run_day = utc_day(session, Run.created_at)
    rows += session.execute(
        select(run_day, Run.status, func.count())
        .where(Run.workspace_id.in_(ids), Run.created_at >= since,
               Run.execution_id.is_(None), Run.status.in_(UNJOURNALED))
        .group_by(run_day, Run.status)).all()
    return [trends.DayCount(day=_day(d), outcome=outcome, count=n) for d, outcome, n in rows]


def _experiments(session: Session, where: dict[str, Place], since: datetime
                 ) -> list[trends.ExperimentFigures]:
    ids = list(where)
    counts: dict[str, dict[str, int]] = {}
    for experiment_id, outcome, n in session.execute(
            select(Execution.experiment_id, Execution.outcome, func.count())
            .where(Execution.workspace_id.in_(ids), Execution.created_at >= since)
            .group_by(Execution.experiment_id, Execution.outcome)):
        by_verdict = counts.setdefault(experiment_id, {})
        kind = trends.verdict(outcome) or "stopped"
        by_verdict[kind] = by_verdict.get(kind, 0) + n
    rows = session.execute(
        select(Experiment.id, Experiment.title, Experiment.workspace_id, Experiment.last_run_at,
               Experiment.last_run_outcome, Experiment.last_execution_id)
        .where(Experiment.workspace_id.in_(ids))).all()
    # Only an experiment run in the window whose last run did not pass may have flipped.
    maybe = [r.id for r in rows if r.last_run_at is not None and r.last_run_at >= since
             and r.last_run_outcome not in trends.PASSED]
    latest = _latest_verdicts(session, maybe)
    return [trends.ExperimentFigures(
        id=r.id, title=r.title, org=where[r.workspace_id].org,
        workspace=where[r.workspace_id].workspace, last_run_at=r.last_run_at,
        last_run_outcome=r.last_run_outcome, last_execution_id=r.last_execution_id,
        passed=counts.get(r.id, {}).get("passed", 0), failed=counts.get(r.id, {}).get("failed", 0),
        stopped=counts.get(r.id, {}).get("stopped", 0), latest_verdicts=latest.get(r.id, []))
        for r in rows]


def _latest_verdicts(session: Session, experiment_ids: list[str]
                     ) -> dict[str, list[trends.RunRef]]:
    """The two latest executions with a verdict of each of these experiments, newest first."""
    if not experiment_ids:
        return {}
    judged = (*trends.PASSED, *trends.FAILED)

    def nth(n: int):
        # Each one a short backward walk of ix_executions_listing, whatever the run count.
        return (select(Execution.id)
                .where(Execution.experiment_id == Experiment.id, Execution.outcome.in_(judged))
                .order_by(Execution.created_at.desc(), Execution.id.desc())
                .limit(1).offset(n).correlate(Experiment).scalar_subquery())

    pairs = session.execute(select(Experiment.id, nth(0), nth(1))
                            .where(Experiment.id.in_(experiment_ids))).all()
    wanted = {x for _, a, b in pairs for x in (a, b) if x}
    found = {e.id: e for e in session.execute(
        select(Execution.id, Execution.outcome, Execution.created_at)
        .where(Execution.id.in_(wanted))).all()} if wanted else {}
    return {experiment_id: [trends.RunRef(execution_id=x, outcome=found[x].outcome,
                                          at=found[x].created_at)
                            for x in (a, b) if x in found]
            for experiment_id, a, b in pairs}
