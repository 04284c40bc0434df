"""The scheduler: fires the schedules that are due, in a thread of each worker process
(`chaoshub worker`, and the worker `chaoshub run` starts), every SCHEDULER_TICK_SECONDS;
never in a web request.

Exactly one run per firing, however many processes tick: a firing is a row unique per
schedule and fire time, inserted in the transaction that queues its run and moves the
schedule's `next_fire_at` on (the schedule's row locked, skipping those another process
holds); a second process's insert fails on the unique key and its transaction leaves nothing.

A firing acts as the schedule's creator, with no more than the rights to report its run
(auth's run claim, as the worker's): their grant in the workspace must still allow running
experiments, else the firing is skipped and says why. So are firings while the org's kill
switch is engaged (the schedule is paused: on release nothing is owed, whatever the missed
policy), outside the workspace's allowed windows, or refused by the run policy.

Policies: firings missed while no scheduler ran (later than `schedules.grace`) are skipped
(`missed` "skip": one skipped firing says how many) or run once on recovery ("run_once"); when
the previous run of the experiment (a queued or running hub run) still goes, the firing is
skipped ("skip"), waits for it to end and then starts ("queue": one firing waits at most), or
aborts it with its rollbacks and starts ("abort": a queued one at once, a running one once it
has played its rollbacks and ended).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from chaoshub.auth import service as auth
from chaoshub.core import process_thread
from chaoshub.core.db import transaction
from chaoshub.core.errors import Forbidden, HubError, NotFound, Unauthorized, first_line
from chaoshub.core.models import new_id, utcnow
from chaoshub.dashboard.service import WorkspaceGrant
from chaoshub.experiment import (
    environments,
    grants,
    hub_runs,
    notifications,
    queue,
    run_checks,
    run_windows,
    schedules,
)
from chaoshub.experiment.models import Experiment, ExperimentVersion, Run, Schedule, ScheduleFiring
from chaoshub.experiment.writes import ExperimentWrite

SERVICE = "experiment"
EXTENSION = "chaoshub.scheduler"
BATCH = 100  # due schedules a tick takes at most
KILL_SWITCH = "kill switch engaged"
PREVIOUS_RUNNING = "the previous run is still going"
OWNER_REFUSED = "its owner may no longer run experiments in this workspace"
PRUNE_SECONDS = 3600.0  # how often a worker removes the firings past their days
log = logging.getLogger(__name__)


@dataclass
class Firing:
    """A firing being decided: the schedule, its experiment, and when it was due."""

    schedule: Schedule
    experiment: Experiment
    fire_at: datetime
    note: str = ""  # said of a run it starts (a run once on recovery)


def record_skip(session, schedule: Schedule, fire_at: datetime, reason: str,
                firing_id: str | None = None) -> None:
    """Record a skipped firing of `schedule`, and why, in the caller's transaction, and owe
    the workspace's webhooks its "schedule.skipped" (the one place every skip goes through)."""
    reason = reason[:2000]
    if firing_id is not None:
        session.execute(update(ScheduleFiring).where(ScheduleFiring.id == firing_id).values(
            outcome="skipped", reason=reason, recorded_at=utcnow()))
    else:
        session.add(ScheduleFiring(schedule_id=schedule.id, fire_at=fire_at,
                                   outcome="skipped", reason=reason, recorded_at=utcnow()))
        session.flush()
    experiment = session.get(Experiment, schedule.experiment_id)
    if experiment is not None:
        notifications.announce(session, experiment.workspace_id, "schedule.skipped", {
            "schedule": {"id": schedule.id, "created_by_name": schedule.created_by_name},
            "experiment": {"id": experiment.id, "title": experiment.title},
            "fire_at": fire_at.isoformat(), "reason": reason})


# One tick -----------------------------------------------------------------------------------


def tick(now: datetime | None = None, tick_seconds: float | None = None) -> int:
    """Fire what is due at `now`, and start the waiting firings whose previous run ended;
    how many firings were recorded or started."""
    now = now or utcnow()
    if tick_seconds is None:
        tick_seconds = float(current_app.config["SCHEDULER_TICK_SECONDS"])
    done = 0
    after = None
    # Batch after batch in this tick (onwards from the last one taken, so a schedule that
    # failed is not taken again): those due beyond the first batch must not wait for later
    # ticks, where enough of them would turn late past the grace and be skipped as missed.
    while True:
        with transaction(SERVICE) as session:
            query = select(Schedule.id, Schedule.next_fire_at).where(
                Schedule.enabled.is_(True), Schedule.next_fire_at <= now)
            if after is not None:
                query = query.where(or_(Schedule.next_fire_at > after[1], and_(
                    Schedule.next_fire_at == after[1], Schedule.id > after[0])))
            due = session.execute(query.order_by(Schedule.next_fire_at, Schedule.id)
                                  .limit(BATCH)).all()
        for schedule_id, fire_at in due:
            try:
                done += fire(schedule_id, fire_at, now, tick_seconds)
            except Exception:  # one schedule's trouble (a service away) holds back no other
                log.warning("schedule %s: its firing at %s waits for the next tick",
                            schedule_id, fire_at.isoformat(), exc_info=True)
        if len(due) < BATCH:
            break
        after = tuple(due[-1])
    with transaction(SERVICE) as session:
        waiting = list(session.scalars(select(ScheduleFiring.id).where(
            ScheduleFiring.outcome == "waiting").order_by(ScheduleFiring.fire_at)))
    for firing_id in waiting:
        try:
            done += start_waiting(firing_id, now)
        except Exception:
            log.warning("firing %s: still waits", firing_id, exc_info=True)
    return done


def fire(schedule_id: str, fire_at: datetime, now: datetime, tick_seconds: float) -> int:
    """Decide and record the schedule's firing due at `fire_at` (with those missed before it);
    1 when this process recorded it, 0 when another had."""
    with transaction(SERVICE) as session:
        row = session.get(Schedule, schedule_id)
        if row is None or not row.enabled or row.next_fire_at != fire_at:
            return 0
        experiment = session.get(Experiment, row.experiment_id)
        session.expunge_all()
    owed = schedules.owed_times(row, now)
    if not owed:
        return 0
    latest = owed[-1]
    if now - latest > schedules.grace(tick_seconds):
        # Every firing owed was missed (the schedulers were down): one is skipped, or run.
        what = _missed(owed)
        if row.missed == "skip":
            return _advance(row, now, skip=(latest, what))
        return _advance(row, now, firing=Firing(row, experiment, latest,
                                                f"run once on recovery: {what}"))
    # On time; those missed before it are told of as one skipped firing.
    skip = (owed[-2], _missed(owed[:-1])) if len(owed) > 1 else None
    return _advance(row, now, skip=skip, firing=Firing(row, experiment, latest))


def _missed(owed: list[datetime]) -> str:
    count = len(owed)
    return (f"missed while no scheduler ran ({count} firing{'s' if count > 1 else ''} since "
            f"{owed[0].isoformat(timespec='minutes')})")


def _advance(row: Schedule, now: datetime, skip: tuple[datetime, str] | None = None,
             firing: Firing | None = None) -> int:
    """Record a skip (its fire time and reason) and/or `firing`, and move the schedule on,
    in one transaction that another process's cannot repeat."""
    decision = _decide(firing, now) if firing is not None else None
    try:
        with ExperimentWrite.open(SERVICE, row.created_by) as work:
            session = work.session
            held = session.scalar(select(Schedule).where(
                Schedule.id == row.id, Schedule.next_fire_at == row.next_fire_at,
                Schedule.enabled.is_(True)).with_for_update(skip_locked=True))
            if held is None:
                return 0  # another process fired it (or it changed meanwhile)
            if skip is not None:
                record_skip(session, held, *skip)
            run_id = None
            if firing is not None and decision is not None:
                run_id = _record(work, held, firing, decision)
            held.next_fire_at = schedules.next_fire_at(held, now)
            if held.next_fire_at is None or (decision is not None and decision.pause):
                held.enabled = False  # a one-off that fired (or was skipped) is done
                held.next_fire_at = None
                held.updated_at = now
                if decision is not None and decision.pause:
                    _tell_paused(work, held, firing.experiment)
    except IntegrityError:
        return 0  # the unique key: another process recorded this firing first
    if run_id is not None:
        queue.enqueue(run_id)
    return 1


@dataclass
class Decision:
    """What a firing does: start a run (`run_id`, with `grant` and `version`), wait, or skip."""

    outcome: str
    reason: str = ""
    run_id: str = ""
    grant: WorkspaceGrant | None = None
    version: int = 0
    options: dict | None = None
    pause: bool = False  # the schedule stops: it would skip every firing from now on


def _decide(firing: Firing, now: datetime, waited: bool = False) -> Decision:
    """Whether the firing may start a run now, as its owner, and with what."""
    row, experiment = firing.schedule, firing.experiment
    if experiment is None:
        return Decision("skipped", "the experiment is gone")
    if not row.enabled:  # disabled while its firing waited for the previous run
        return Decision("skipped", "the schedule was disabled")
    run_id = new_id()
    try:
        claim = auth.run_claim(row.created_by, list(auth.RUN_REPORTING_SCOPES), run_id)
        grant = grants.by_id(claim, experiment.workspace_id)
        grants.require(grant, "run")
    except (Forbidden, NotFound, Unauthorized) as exc:
        # A refusal, or what a worker's call to another process can look like for a while
        # (clocks apart, keys being rotated): paused only when the firing before was refused
        # too, rather than skipping every firing for good.
        if not _refused_before(row.id):
            return Decision("skipped", f"{OWNER_REFUSED} ({exc.message})")
        return Decision("skipped", f"{OWNER_REFUSED} ({exc.message}); refused twice in a row, "
                                   "the schedule is paused until someone who may run it here "
                                   "enables it again", pause=True)
    if grant.kill_switch.engaged:
        return Decision("skipped", KILL_SWITCH)
    outside = run_windows.refusal(grant.run_policy, now)
    if outside:
        return Decision("skipped", outside)
    if not waited and _active_runs(experiment.id):
        if row.overlap == "skip":
            return Decision("skipped", PREVIOUS_RUNNING)
        if row.overlap == "queue":
            return Decision("waiting", "waits for the previous run to end")
    options = row.options or {}
    version = options.get("version") or experiment.version
    run_options = {"dry": options.get("dry"),
                   "rollback_strategy": options.get("rollback_strategy"),
                   "configuration": {}, "max_seconds": grant.run_policy.max_duration_seconds,
                   "schedule_id": row.id}
    try:
        if options.get("environment"):
            chosen = environments.for_run(grant, options["environment"])
            run_options.update(environment_id=chosen.id, environment=chosen.name)
        document = _document(experiment.id, version)
        run_checks.check_start(grant, experiment.id, version, document, options.get("dry"),
                               now, replacing=row.overlap == "abort")
    except HubError as exc:
        return Decision("skipped", f"the run may not start: {exc.message}")
    return Decision("started", firing.note, run_id, grant, version, run_options)


def _record(work: ExperimentWrite, row: Schedule, firing: Firing, decision: Decision
            ) -> str | None:
    """Record the decided firing; queue its run; the run's id when it started one."""
    session = work.session
    if decision.outcome == "skipped":
        record_skip(session, row, firing.fire_at, decision.reason)
        return None
    if decision.outcome == "waiting":
        return _wait(session, row, firing, decision.reason)
    experiment = firing.experiment
    if row.overlap == "abort":
        hub_runs.abort(session, [Run.experiment_id == experiment.id, Run.origin == "hub"],
                       True, "aborted for the next firing of its schedule")
        if session.scalar(select(Run.id).where(
                Run.experiment_id == experiment.id, Run.origin == "hub",
                Run.status.in_(hub_runs.ACTIVE)).limit(1)):
            # A running one stops after its rollbacks: the next starts then, not beside them
            # (nor beyond the workspace's runs at once).
            return _wait(session, row, firing, "waits for the aborted run to play its "
                                               "rollbacks")
    run_id = _queue(work, row, experiment, decision)
    session.add(ScheduleFiring(schedule_id=row.id, fire_at=firing.fire_at, outcome="started",
                               run_id=run_id, reason=decision.reason, recorded_at=utcnow()))
    session.flush()
    return run_id


def _wait(session, row: Schedule, firing: Firing, reason: str) -> None:
    """Record the firing as waiting for the previous run to end (skipped when one waits
    already: one firing waits at most)."""
    if session.scalar(select(ScheduleFiring.id).where(
            ScheduleFiring.schedule_id == row.id, ScheduleFiring.outcome == "waiting")):
        record_skip(session, row, firing.fire_at,
                    f"{PREVIOUS_RUNNING}, and a firing waits for it already")
        return None
    session.add(ScheduleFiring(schedule_id=row.id, fire_at=firing.fire_at, outcome="waiting",
                               reason=reason, recorded_at=utcnow()))
    session.flush()
    return None


def _queue(work: ExperimentWrite, row: Schedule, experiment: Experiment,
           decision: Decision) -> str:
    run_id = hub_runs.add_queued(work.session, experiment.id, experiment.workspace_id,
                                 decision.version, decision.options or {}, row.created_by,
                                 row.created_by_name, run_id=decision.run_id)
    work.feed(experiment.org_id, "run.started",
              f"A schedule of {row.created_by_name} started a run of {experiment.title} "
              f"(version {decision.version})", experiment.workspace_id, "executions",
              f"A run of {experiment.title} was started",
              {"run_id": run_id, "experiment_id": experiment.id, "schedule_id": row.id,
               "workspace_id": experiment.workspace_id},
              f"run:{experiment.id}:{run_id}")
    return run_id


def start_waiting(firing_id: str, now: datetime) -> int:
    """Start a firing that waits (overlap "queue") once the experiment's previous run ended;
    1 when it started or was skipped now."""
    with transaction(SERVICE) as session:
        waiting = session.get(ScheduleFiring, firing_id)
        if waiting is None or waiting.outcome != "waiting":
            return 0
        row = session.get(Schedule, waiting.schedule_id)
        experiment = session.get(Experiment, row.experiment_id) if row else None
        fire_at = waiting.fire_at
        session.expunge_all()
    if row is None or experiment is None or _active_runs(experiment.id):
        return 0
    decision = _decide(Firing(row, experiment, fire_at), now, waited=True)
    run_id = None
    try:
        with ExperimentWrite.open(SERVICE, row.created_by) as work:
            session = work.session
            taken = session.execute(update(ScheduleFiring).where(
                ScheduleFiring.id == firing_id, ScheduleFiring.outcome == "waiting").values(
                outcome="started" if decision.outcome == "started" else "waiting",
                recorded_at=utcnow())).rowcount
            if not taken:
                return 0  # another process started it
            if decision.outcome != "started":
                record_skip(session, row, fire_at, decision.reason, firing_id=firing_id)
                # Unless enabled again meanwhile (by someone it now acts as).
                if decision.pause and session.execute(update(Schedule).where(
                        Schedule.id == row.id, Schedule.enabled.is_(True),
                        Schedule.created_by == row.created_by)
                        .values(enabled=False, next_fire_at=None, updated_at=now)).rowcount:
                    row.enabled = False  # detached: only what the audit log keeps of it
                    _tell_paused(work, row, experiment)
            else:
                run_id = _queue(work, row, experiment, decision)
                session.execute(update(ScheduleFiring).where(ScheduleFiring.id == firing_id)
                                .values(run_id=run_id, reason="started once the previous "
                                                              "run ended"))
    except IntegrityError:
        return 0
    if run_id is not None:
        queue.enqueue(run_id)
    return 1


def _tell_paused(work: ExperimentWrite, row: Schedule, experiment: Experiment) -> None:
    """Put the pause of a schedule whose owner may no longer run it in the org's feed (for its
    members) and audit log, as done by that owner, whom its firings acted as."""
    work.feed(experiment.org_id, "schedule.paused",
              f"A schedule of {experiment.title} was paused: {row.created_by_name}, whom it "
              "runs as, may no longer run experiments here", experiment.workspace_id,
              "members", audited=schedules.describe(row), subject=f"experiment:{experiment.id}")


def _refused_before(schedule_id: str) -> bool:
    """Whether the schedule's latest recorded firing was skipped for its owner's rights."""
    with transaction(SERVICE) as session:
        reason = session.scalar(select(ScheduleFiring.reason).where(
            ScheduleFiring.schedule_id == schedule_id)
            .order_by(ScheduleFiring.fire_at.desc()).limit(1))
    return bool(reason) and reason.startswith(OWNER_REFUSED)


def _active_runs(experiment_id: str) -> list[str]:
    with transaction(SERVICE) as session:
        return list(session.scalars(select(Run.id).where(
            Run.experiment_id == experiment_id, Run.origin == "hub",
            Run.status.in_(hub_runs.ACTIVE))))


def _document(experiment_id: str, version: int) -> dict:
    with transaction(SERVICE) as session:
        found = session.scalar(select(ExperimentVersion.document).where(
            ExperimentVersion.experiment_id == experiment_id,
            ExperimentVersion.number == version))
    if found is None:
        raise HubError(f"the experiment has no version {version}")
    return found


# The thread ---------------------------------------------------------------------------------


def start(app: Flask) -> bool:
    """Start this process's scheduler thread (SCHEDULER_TICK_SECONDS > 0); True when started."""
    every = float(app.config["SCHEDULER_TICK_SECONDS"])
    if every <= 0 or "experiment" not in app.config["CHAOSHUB_SERVICES"]:
        return False
    return process_thread.start_in(app, EXTENSION, "chaoshub-scheduler",
                                   lambda app_ref, stopped: _run(app_ref, every, stopped))


def stop(app: Flask) -> None:
    """Stop this process's scheduler thread, after its tick."""
    process_thread.stop_in(app, EXTENSION)


def _run(app_ref: weakref.ref, every: float, stopped: threading.Event) -> None:
    failures = 0
    pruned: float | None = None
    while not stopped.wait(_pause(every, failures)):
        app = app_ref()  # weak: an app that is gone ends its thread
        if app is None:
            return
        failures = _round(app, every, failures)
        if not failures and (pruned is None or time.monotonic() - pruned > PRUNE_SECONDS):
            pruned = time.monotonic()
            _prune(app)
        del app


def _prune(app: Flask) -> None:
    with app.app_context():
        try:
            schedules.prune_firings()
        except Exception as exc:  # the database away: the next hour tries again
            log.warning("the schedules' old firings wait for the next hour: %s", first_line(exc))


def _round(app: Flask, every: float, failures: int) -> int:
    """One tick; how many ticks in a row failed after it (the first failure is logged with
    its cause, the next ones not until a tick works again: an outage floods no log)."""
    with app.app_context():
        try:
            tick(tick_seconds=every)
        except Exception:  # a database away: the next tick tries again
            if not failures:
                log.warning("the scheduler's ticks fail; they go on, logged again once one "
                            "works", exc_info=True)
            return failures + 1
    if failures:
        log.warning("the scheduler's ticks work again after %d failed", failures)
    return 0


def _pause(every: float, failures: int) -> float:
    """Seconds to the next tick: longer after failed ones, but at most 30 (or `every`), half a
    firing's minute of grace, so a database back in time fires what is due on time."""
    return min(max(every, 30.0), every * 2 ** failures)

