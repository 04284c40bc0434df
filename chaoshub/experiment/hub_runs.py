"""Runs started on the hub: queued with their options, claimed by one worker, leased while they
go on, and ended once.

Each change of state is a conditional update on the run's row, so that two workers never take
the same run, a worker that lost its lease cannot end a run the reaper already ended, and an
abort that races the end of a run changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update

from chaoshub.core import paging, request_ids
from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.experiment import journals, notifications, store
from chaoshub.experiment.models import Run

SERVICE = "experiment"
LEASE_SECONDS = 30
ACTIVE = ("queued", "running")
ENDED = ("finished", "aborted", "interrupted", "refused")
Desired = Literal["run", "abort", "abort-now"]


def queue_run(experiment_id: str, workspace_id: str, version: int, options: dict[str, Any],
              user_id: str, user_name: str) -> str:
    """Add a queued run of the experiment's version `version`; returns its id."""
    with transaction(SERVICE) as session:
        return add_queued(session, experiment_id, workspace_id, version, options, user_id,
                          user_name)


def add_queued(session, experiment_id: str, workspace_id: str, version: int,
               options: dict[str, Any], user_id: str, user_name: str,
               run_id: str | None = None) -> str:
    """Add a queued run in the caller's transaction (a schedule's firing); returns its id."""
    # Locked where the run was authorized: a move cannot slip in before the insert.
    store.experiment_in(session, experiment_id, workspace_id)
    row = Run(experiment_id=experiment_id, workspace_id=workspace_id, status="queued",
              desired="run", origin="hub", version=version, options=options,
              node="", created_by=user_id, created_by_name=journals.text(user_name, 500),
              request_id=request_ids.current() or "", last_seq=0, event_count=0,
              created_at=utcnow())
    if run_id is not None:
        row.id = run_id
    session.add(row)
    session.flush()
    return row.id


def runs_page(experiment_id: str, cursor: str | None, name: str, limit: object
              ) -> tuple[list[Run], str | None]:
    """A page of an experiment's runs (from the hub and from clients) newest first, detached,
    and the next page's cursor (listing `name`)."""
    with transaction(SERVICE) as session:
        rows, next_cursor = paging.newest_first(
            session, select(Run).where(Run.experiment_id == experiment_id), Run.created_at,
            Run.id, cursor, name, [experiment_id], limit)
        session.expunge_all()
        return rows, next_cursor


def next_queued() -> str | None:
    """The oldest queued run, or None."""
    with transaction(SERVICE) as session:
        return session.scalar(select(Run.id).where(Run.status == "queued")
                              .order_by(Run.created_at, Run.id).limit(1))


def queued_ids() -> list[str]:
    """Every queued run, oldest first."""
    with transaction(SERVICE) as session:
        return list(session.scalars(select(Run.id).where(Run.status == "queued")
                                    .order_by(Run.created_at, Run.id)))


def claim(run_id: str, worker: str, lease: int = LEASE_SECONDS) -> Run | None:
    """Take the queued run for `worker` (running, leased); None when another took it first or
    it is no longer queued."""
    now = utcnow()
    with transaction(SERVICE) as session:
        taken = session.execute(
            update(Run).where(Run.id == run_id, Run.status == "queued", Run.desired == "run")
            .values(status="running", worker=worker, node=journals.text(worker, 500),
                    started_at=now, lease_until=now + timedelta(seconds=lease))
        ).rowcount
        if not taken:
            return None
        row = session.get(Run, run_id)
        notifications.run_changed(session, row, "run.started")
        session.flush()
        session.expunge(row)
        return row


def renew(run_id: str, worker: str, lease: int = LEASE_SECONDS) -> Desired | None:
    """Extend the worker's lease on the run; what the hub wants of it, or None when the run
    is no longer the worker's (ended, or reaped)."""
    with transaction(SERVICE) as session:
        renewed = session.execute(
            update(Run).where(Run.id == run_id, Run.status == "running", Run.worker == worker)
            .values(lease_until=utcnow() + timedelta(seconds=lease))
        ).rowcount
        if not renewed:
            return None
        return session.scalar(select(Run.desired).where(Run.id == run_id))


def end(run_id: str, status: str, reason: str | None = "", worker: str | None = None) -> bool:
    """Put an active run in its final `status` (and a reason; None keeps the one it was given
    when asked to stop); False when it had already ended (or, with `worker`, is no longer that
    worker's)."""
    conditions = [Run.id == run_id, Run.status.in_(ACTIVE)]
    if worker is not None:
        conditions.append(Run.worker == worker)
    values: dict[str, Any] = {"status": status, "lease_until": None, "finished_at": utcnow()}
    if reason is not None:
        values["reason"] = journals.text(reason, 2000)
    with transaction(SERVICE) as session:
        ended = bool(session.execute(update(Run).where(*conditions).values(**values)).rowcount)
        if ended and status in notifications.STATUS_EVENTS:
            notifications.run_changed(session, session.get(Run, run_id),
                                      notifications.STATUS_EVENTS[status])
        return ended


def settle(run_id: str, status: str, reason: str | None = None) -> None:
    """Give a run whose journal came in (now `finished`) the status it really ended with (and
    a reason; None keeps the one it was given when asked to stop)."""
    values: dict[str, Any] = {"status": status, "lease_until": None}
    if reason is not None:
        values["reason"] = journals.text(reason, 2000)
    with transaction(SERVICE) as session:
        session.execute(update(Run).where(Run.id == run_id).values(**values))


def request_abort(run_id: str, rollbacks: bool, reason: str = "aborted on request") -> str:
    """Ask the run to stop; a queued one ends `aborted` at once. Its status afterwards."""
    with transaction(SERVICE) as session:
        abort(session, [Run.id == run_id], rollbacks, reason)
        return session.scalar(select(Run.status).where(Run.id == run_id)) or ""


def abort_in_workspaces(session, workspace_ids: list[str], reason: str) -> None:
    """Stop every active run (from the hub or a client) of these workspaces, with rollbacks."""
    abort(session, [Run.workspace_id.in_(workspace_ids)], True, reason)


def abort(session, conditions: list, rollbacks: bool, reason: str) -> None:
    """Stop the active runs matching `conditions`: queued ones end now, running ones are asked
    to (their worker or client reads `desired`)."""
    desired = "abort" if rollbacks else "abort-now"
    reason = journals.text(reason, 2000)
    ended = session.execute(update(Run).where(*conditions, Run.status == "queued").values(
        status="aborted", desired=desired, reason=f"{reason} (before it started)",
        finished_at=utcnow()).returning(Run.id)).scalars().all()
    notifications.run_events_by_ids(session, list(ended), "run.aborted")
    session.execute(update(Run).where(*conditions, Run.status == "running").values(
        desired=desired, reason=reason))


def reap(now: datetime | None = None) -> list[str]:
    """End as `interrupted` the running hub runs whose worker stopped renewing its lease."""
    now = now or utcnow()
    with transaction(SERVICE) as session:
        lost = list(session.scalars(select(Run.id).where(
            Run.status == "running", Run.origin == "hub", Run.lease_until < now)))
    reaped = []
    for run_id in lost:
        with transaction(SERVICE) as session:
            # Again under the lease condition: the worker may have renewed it meanwhile. A row
            # that a lost worker's open transaction still holds (a host gone mid-write) is left
            # for a later round rather than waited on: the reaper, and the worker it runs in,
            # never hang on it (PostgreSQL frees it once it ends that session).
            if session.scalar(select(Run.id).where(
                    Run.id == run_id, Run.status == "running", Run.lease_until < now)
                    .with_for_update(skip_locked=True)) is None:
                continue
            session.execute(update(Run).where(Run.id == run_id).values(
                status="interrupted", lease_until=None, finished_at=utcnow(),
                reason="its worker was lost before the journal arrived"))
            notifications.run_changed(session, session.get(Run, run_id), "run.interrupted")
            reaped.append(run_id)
    return reaped
