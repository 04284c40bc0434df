"""Retention, run by the workers: journals, run events and (through dashboard) activity entries
older than their RETENTION_*_DAYS settings go, in bounded batches, and each org's audit log says
what went.

An execution whose journal went keeps its row, outcome and activities: listings, charts and
comparisons still show it; only its journal answers 404. Run events go only from ended runs.
Days count from the start of the current UTC day, so a hub's rows age out once a day and each org
gets at most about one audit entry a day.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update

from chaoshub.core.db import transaction
from chaoshub.core.errors import HubError
from chaoshub.core.models import utcnow
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment.hub_runs import ENDED
from chaoshub.experiment.models import Execution, ExecutionJournal, Experiment, Run, RunEvent

log = logging.getLogger(__name__)

SERVICE = "experiment"
SWEEP_SECONDS = 300.0  # a worker sweeps at most this often
BATCH = 500  # journals, or runs' events, removed in one transaction
MAX_BATCHES = 10  # per kind and sweep: a backlog goes over the next sweeps

_last_sweep: float | None = None
_unaudited: dict[str, dict[str, int]] = {}  # what went but dashboard could not be told yet


def sweep_when_due() -> dict[str, dict[str, int]] | None:
    """Sweep when retention is on and this process has not swept for SWEEP_SECONDS; what went,
    by org id (None when no sweep ran). Never raises: the next sweep tries again."""
    global _last_sweep
    config = current_app.config
    if not any(config[k] for k in ("RETENTION_JOURNAL_DAYS", "RETENTION_RUN_EVENTS_DAYS",
                                   "RETENTION_ACTIVITY_DAYS")):
        return None
    if _last_sweep is not None and time.monotonic() - _last_sweep < SWEEP_SECONDS:
        return None
    _last_sweep = time.monotonic()
    try:
        return sweep()
    except Exception:  # a database hiccup: the next sweep finds what is left
        log.warning("the retention sweep failed", exc_info=True)
        return None


def sweep(now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Remove what is older than the settings say (at most MAX_BATCHES batches of each kind) and
    have dashboard remove old activity and audit it all; what went, by org id."""
    config = current_app.config
    day = (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)
    journal_days = config["RETENTION_JOURNAL_DAYS"]
    event_days = config["RETENTION_RUN_EVENTS_DAYS"]
    activity_days = config["RETENTION_ACTIVITY_DAYS"]
    journals = _batches(_remove_journals, day - timedelta(days=journal_days)) \
        if journal_days else Counter()
    events = _batches(_remove_run_events, day - timedelta(days=event_days)) \
        if event_days else Counter()
    for org_id, count in journals.items():
        _add(org_id, {"journals": count, "journal_days": journal_days})
    for org_id, count in events.items():
        _add(org_id, {"run_events": count, "run_event_days": event_days})
    report = {org_id: dict(counts) for org_id, counts in _unaudited.items()}
    try:
        activity = dashboard.apply_retention(
            day - timedelta(days=activity_days) if activity_days else None, activity_days,
            BATCH * MAX_BATCHES, report)
    except HubError as exc:
        log.warning("retention: removed %s journals and %s run events, not audited yet "
                    "(dashboard: %s); the next sweep tells it", sum(journals.values()),
                    sum(events.values()), exc.message)
        return report
    _unaudited.clear()
    for org_id, count in activity.items():
        report.setdefault(org_id, {}).update(activity=count, activity_days=activity_days)
    if report:
        log.info("retention removed %s", {k: sum(r.get(k, 0) for r in report.values())
                                         for k in ("journals", "run_events", "activity")})
    return report


def _batches(remove, before: datetime) -> Counter[str]:
    removed: Counter[str] = Counter()
    for _ in range(MAX_BATCHES):
        batch = remove(before, BATCH)
        removed.update(batch)
        if sum(batch.values()) == 0:
            break
    return removed


def _remove_journals(before: datetime, limit: int) -> Counter[str]:
    """The journals of up to `limit` executions published before `before`, by org id."""
    with transaction(SERVICE) as session:
        org_of = dict(session.execute(
            select(ExecutionJournal.execution_id, Experiment.org_id)
            .join(Execution, Execution.id == ExecutionJournal.execution_id)
            .join(Experiment, Experiment.id == Execution.experiment_id)
            .where(Execution.created_at < before).limit(limit)).all())
        if not org_of:
            return Counter()
        # Counted from what this transaction removed: another worker's sweep may race it.
        gone = session.scalars(delete(ExecutionJournal).where(
            ExecutionJournal.execution_id.in_(list(org_of)))
            .returning(ExecutionJournal.execution_id)).all()
        return Counter(org_of[execution_id] for execution_id in gone)


def _remove_run_events(before: datetime, limit: int) -> Counter[str]:
    """The events received before `before` of up to `limit` ended runs, by org id."""
    removed: Counter[str] = Counter()
    with transaction(SERVICE) as session:
        org_of = dict(session.execute(
            select(RunEvent.run_id, Experiment.org_id).distinct()
            .join(Run, Run.id == RunEvent.run_id)
            .join(Experiment, Experiment.id == Run.experiment_id)
            .where(RunEvent.received_at < before, Run.status.in_(ENDED)).limit(limit)).all())
        for run_id, org_id in org_of.items():
            gone = session.scalars(delete(RunEvent).where(
                RunEvent.run_id == run_id, RunEvent.received_at < before)
                .returning(RunEvent.seq)).all()
            removed[org_id] += len(gone)
            left = select(func.count()).select_from(RunEvent).where(RunEvent.run_id == run_id)
            session.execute(update(Run).where(Run.id == run_id)
                            .values(event_count=left.scalar_subquery()))
    return removed


def _add(org_id: str, counts: dict[str, int]) -> None:
    held = _unaudited.setdefault(org_id, {})
    for key, value in counts.items():
        held[key] = value if key.endswith("_days") else held.get(key, 0) + value
