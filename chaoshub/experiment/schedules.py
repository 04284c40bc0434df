"""Schedules of experiments: once at a time, or by a cron expression (cronsim) in a time zone
(zoneinfo), with a manual run's options; their next fire times, and what each firing did.

The experiment service's functions (service.py) authorize; this module checks, keeps and
shows. scheduler.py fires them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError
from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session, aliased

from chaoshub.core import paging
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, NotFound, ValidationFailed, problem
from chaoshub.core.models import utcnow
from chaoshub.core.schemas import Frozen
from chaoshub.dashboard.service import WorkspaceGrant, zone_problem
from chaoshub.experiment import environments
from chaoshub.experiment.models import Experiment, Schedule, ScheduleFiring
from chaoshub.experiment.runs import Dry, RollbackStrategy
from chaoshub.experiment.schemas import ExperimentView
from chaoshub.experiment.writes import ExperimentWrite

SERVICE = "experiment"
Kind = Literal["once", "cron"]
Missed = Literal["skip", "run_once"]
Overlap = Literal["skip", "queue", "abort"]
Outcome = Literal["started", "skipped", "waiting"]
PREVIEW = 5  # fire times shown ahead
MAX_PER_EXPERIMENT = 20
FIRINGS = "schedule firings"  # the listing's name, signed into its cursors
FIRINGS_KEEP_DAYS = 30  # how long a schedule's history keeps a firing
PRUNE_BATCH = 1000  # firings removed in one transaction
LISTING = "experiment schedules"
UTC = ZoneInfo("UTC")


class ScheduleView(Frozen):
    """A schedule, its run options and policies, and its next fire times in its zone."""

    id: str
    experiment_id: str
    kind: Kind
    cron: str | None
    at: datetime | None
    time_zone: str
    enabled: bool
    version: int | Literal["latest"]
    environment: str | None
    dry: Dry | None
    rollback_strategy: RollbackStrategy | None
    missed: Missed
    overlap: Overlap
    next_fire_times: list[datetime]
    created_by: str
    created_by_name: str
    created_at: datetime
    updated_at: datetime


class FiringView(Frozen):
    """What one firing did: the run it started, or why it was skipped (or that it waits for
    the previous run to end)."""

    id: str
    schedule_id: str
    fire_at: datetime
    outcome: Outcome
    run_id: str | None
    reason: str
    recorded_at: datetime


class SchedulePage(Frozen):
    """A page of an experiment's schedules, oldest first."""

    schedules: list[ScheduleView]
    next_cursor: str | None


class FiringPage(Frozen):
    """A page of a schedule's firings, newest first."""

    firings: list[FiringView]
    next_cursor: str | None


class Upcoming(Frozen):
    """One coming firing of a workspace's schedule."""

    fire_at: datetime
    schedule_id: str
    experiment_id: str
    experiment_title: str
    created_by_name: str


class ScheduleFields(Frozen):
    """What a schedule is made of or changed with (None: not given)."""

    kind: Kind | None = None
    cron: str | None = None
    at: str | None = None
    time_zone: str | None = None
    enabled: bool | None = None
    version: int | Literal["latest"] | None = None
    environment: str | None = None
    dry: Dry | None = None
    rollback_strategy: RollbackStrategy | None = None
    missed: Missed | None = None
    overlap: Overlap | None = None


# Fire times -----------------------------------------------------------------------------------


def cron_problem(expression: Any) -> str | None:
    """Why `expression` is no five-field cron expression cronsim reads (None when it is)."""
    if not isinstance(expression, str) or not expression.strip() or len(expression) > 200:
        return "a cron expression of five fields: minute hour day-of-month month day-of-week"
    if len(expression.split()) != 5:
        return "a cron expression has five fields: minute hour day-of-month month day-of-week"
    try:
        next(iter(CronSim(expression, datetime.now(UTC))))
    except (CronSimError, StopIteration, ValueError) as exc:
        return f"not a valid cron expression: {exc or 'it never fires'}"
    return None


def fire_times(kind: str, cron: str | None, once_at: datetime | None, zone: str,
               after: datetime, count: int = PREVIEW) -> list[datetime]:
    """The next `count` fire times strictly after `after`, in the schedule's zone."""
    tz = ZoneInfo(zone)
    if kind == "once":
        return [once_at.astimezone(tz)] if once_at is not None and once_at > after else []
    found = []
    for moment in CronSim(cron or "", after.astimezone(tz)):
        found.append(moment)
        if len(found) >= count:
            break
    return found


def next_fire_at(row: Schedule, after: datetime) -> datetime | None:
    """The schedule's first fire time after `after` (UTC), or None."""
    times = fire_times(row.kind, row.cron, row.once_at, row.time_zone, after, 1)
    return times[0].astimezone(UTC) if times else None


def owed_times(row: Schedule, now: datetime, limit: int = 10000) -> list[datetime]:
    """The fire times from the one due (`next_fire_at`) to `now`, oldest first: more than one
    when firings were missed."""
    if row.next_fire_at is None or row.next_fire_at > now:
        return []
    owed = [row.next_fire_at]
    if row.kind == "cron":
        for moment in CronSim(row.cron or "", row.next_fire_at.astimezone(ZoneInfo(row.time_zone))):
            if moment > now or len(owed) >= limit:
                break
            owed.append(moment.astimezone(UTC))
    return owed


# Checking what is given ------------------------------------------------------------------------


def checked(fields: ScheduleFields, row: Schedule | None, now: datetime,
            grant: WorkspaceGrant, view: ExperimentView) -> dict[str, Any]:
    """The columns a schedule made (`row` None) or changed with `fields` gets; ValidationFailed
    with the pointer of every value at fault."""
    found: list[dict[str, str]] = []
    kind = fields.kind or (row.kind if row else None)
    if kind is None:
        kind = "once" if fields.at is not None else "cron"
    zone = fields.time_zone if fields.time_zone is not None else (
        row.time_zone if row else "UTC")
    if (message := zone_problem(zone)) is not None:
        found.append(problem("time_zone", message))
        zone = "UTC"
    columns: dict[str, Any] = {"kind": kind, "time_zone": zone}
    if kind == "cron":
        cron = fields.cron if fields.cron is not None else (row.cron if row else None)
        if cron is None:
            found.append(problem("cron", "a recurring schedule needs its cron expression"))
        elif (message := cron_problem(cron)) is not None:
            found.append(problem("cron", message))
        else:
            columns.update(cron=" ".join(cron.split()), once_at=None)
        if fields.at is not None:
            found.append(problem("at", "only a schedule of kind once has a time"))
    else:
        if fields.cron is not None:
            found.append(problem("cron", "only a schedule of kind cron has a cron expression"))
        if fields.at is None and (row is None or row.once_at is None):
            found.append(problem("at", "a one-off schedule needs its time"))
        elif fields.at is not None or fields.time_zone is not None:
            at = _moment(fields.at, zone, found) if fields.at is not None else row.once_at
            if at is not None and at <= now and (fields.at is not None or row is None):
                found.append(problem("at", "the time has passed: choose one to come"))
            elif at is not None:
                columns.update(once_at=at.astimezone(UTC), cron=None)
    if kind == "once" and fields.enabled and fields.at is None and row is not None \
            and row.once_at is not None and row.once_at <= now:
        found.append(problem("at", "the time has passed: choose one to come"))  # fired
    options = dict(row.options) if row else {}
    if fields.version is not None:
        if fields.version != "latest" and not 1 <= fields.version <= view.version:
            found.append(problem("version", f"the experiment's versions are 1 to {view.version}"
                                            ' (or "latest")'))
        options["version"] = None if fields.version == "latest" else fields.version
    if fields.environment is not None:
        if fields.environment == "":
            options.pop("environment", None)
        else:
            try:
                environments.for_run(grant, fields.environment)
                options["environment"] = fields.environment
            except ValidationFailed as exc:
                found.extend(exc.details or [problem("environment", exc.message)])
    elif row is not None and options.get("environment") and not (
            fields.model_fields_set <= {"enabled"} and fields.enabled is False):
        # It fires as its creator: whoever changes it (but to disable it) must be allowed to
        # run where it runs, or a member could retime a maintainer's schedule in a protected
        # environment (Forbidden).
        try:
            environments.for_run(grant, options["environment"])
        except ValidationFailed:
            pass  # gone since: its firings say so, and changing it stays allowed
    for name in ("dry", "rollback_strategy"):
        if name in fields.model_fields_set:
            options[name] = getattr(fields, name)
    columns["options"] = options
    for name in ("missed", "overlap", "enabled"):
        value = getattr(fields, name)
        if value is not None:
            columns[name] = value
    if found:
        raise ValidationFailed("the schedule is not valid", found)
    return columns


def _moment(text: Any, zone: str, found: list) -> datetime | None:
    """An ISO 8601 time, with its offset or else in `zone`."""
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) and len(text) <= 64 \
            else None
    except ValueError:
        moment = None
    if moment is None:
        found.append(problem("at", "an ISO 8601 date and time, such as 2030-01-31T09:00 "
                                   "(in the schedule's time zone) or with its offset"))
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    try:
        # Shown in its zone and kept in UTC: neither may fall past the calendar's end.
        moment.astimezone(UTC).astimezone(ZoneInfo(zone))
    except OverflowError:
        found.append(problem("at", "a time before the year 9999"))
        return None
    return moment


# Keeping ---------------------------------------------------------------------------------------


def create(work: ExperimentWrite, user: UserClaim, view: ExperimentView, columns: dict[str, Any],
           now: datetime) -> Schedule:
    """Add a schedule to the experiment (its creator is who it acts as)."""
    session = work.session
    held = session.scalar(select(func.count()).select_from(Schedule).where(
        Schedule.experiment_id == view.id)) or 0
    if held >= MAX_PER_EXPERIMENT:
        raise Conflict(f"an experiment has {MAX_PER_EXPERIMENT} schedules at most")
    row = Schedule(experiment_id=view.id, created_by=user.sub, created_by_name=user.name[:500],
                   created_at=now, updated_at=now, enabled=True, missed="skip",
                   overlap="skip", cron=None, once_at=None)
    for name, value in columns.items():
        setattr(row, name, value)
    row.next_fire_at = next_fire_at(row, now) if row.enabled else None
    session.add(row)
    session.flush()
    return row


def change(row: Schedule, columns: dict[str, Any], now: datetime) -> None:
    """Apply a change; its next firing counts from now (none owed while it was disabled)."""
    for name, value in columns.items():
        setattr(row, name, value)
    row.updated_at = now
    row.next_fire_at = next_fire_at(row, now) if row.enabled else None


def load(session: Session, schedule_id: Any, lock: bool = False) -> Schedule:
    """The schedule with this id; NotFound otherwise."""
    if not isinstance(schedule_id, str) or len(schedule_id) > 36:
        raise NotFound("no such schedule")
    query = select(Schedule).where(Schedule.id == schedule_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound("no such schedule")
    return row


def experiment_of(schedule_id: Any) -> str:
    """The id of the experiment a schedule belongs to; NotFound when there is no schedule."""
    with transaction(SERVICE) as session:
        return load(session, schedule_id).experiment_id


def view_of(row: Schedule, now: datetime) -> ScheduleView:
    """A schedule as answers show it."""
    options = row.options or {}
    upcoming = []
    if row.enabled and row.next_fire_at is not None:
        first = row.next_fire_at.astimezone(ZoneInfo(row.time_zone))
        # Owed since the workers stopped: it shows, then what is to come (not the times gone
        # by since, which a worker back never fires).
        upcoming = [first] + fire_times(row.kind, row.cron, row.once_at, row.time_zone,
                                        max(row.next_fire_at, now), PREVIEW - 1)
    return ScheduleView(
        id=row.id, experiment_id=row.experiment_id, kind=row.kind, cron=row.cron,
        at=row.once_at.astimezone(ZoneInfo(row.time_zone)) if row.once_at else None,
        time_zone=row.time_zone, enabled=row.enabled,
        version=options.get("version") or "latest", environment=options.get("environment"),
        dry=options.get("dry"), rollback_strategy=options.get("rollback_strategy"),
        missed=row.missed, overlap=row.overlap, next_fire_times=upcoming[:PREVIEW],
        created_by=row.created_by, created_by_name=row.created_by_name,
        created_at=row.created_at, updated_at=row.updated_at)


def page(experiment_id: str, cursor: str | None, limit: int | str | None) -> SchedulePage:
    """A page of the experiment's schedules, oldest first."""
    size = paging.page_size(limit)
    now = utcnow()
    with transaction(SERVICE) as session:
        rows = list(session.scalars(select(Schedule).where(
            Schedule.experiment_id == experiment_id)))
        shown, next_cursor = paging.page_of(
            rows, lambda r: [r.created_at.isoformat(), r.id], cursor, LISTING,
            [experiment_id], size)
        return SchedulePage(schedules=[view_of(r, now) for r in shown], next_cursor=next_cursor)


def firing_view(row: ScheduleFiring) -> FiringView:
    """A firing as answers show it."""
    return FiringView(id=row.id, schedule_id=row.schedule_id, fire_at=row.fire_at,
                      outcome=row.outcome, run_id=row.run_id, reason=row.reason,
                      recorded_at=row.recorded_at)


def firings(schedule_id: str, cursor: str | None, limit: int | str | None) -> FiringPage:
    """A page of the schedule's firings, newest first."""
    with transaction(SERVICE) as session:
        rows, next_cursor = paging.newest_first(
            session, select(ScheduleFiring).where(ScheduleFiring.schedule_id == schedule_id),
            ScheduleFiring.fire_at, ScheduleFiring.id, cursor, FIRINGS, [schedule_id], limit)
        return FiringPage(firings=[firing_view(r) for r in rows], next_cursor=next_cursor)


def prune_firings(now: datetime | None = None) -> int:
    """Remove the firings due more than FIRINGS_KEEP_DAYS ago, but for each schedule's latest
    (whether the one before was refused counts: scheduler.py) and one that waits, in batches
    until none is left; how many went."""
    cutoff = (now or utcnow()) - timedelta(days=FIRINGS_KEEP_DAYS)
    later = aliased(ScheduleFiring)
    old = select(ScheduleFiring.id).where(
        ScheduleFiring.fire_at < cutoff, ScheduleFiring.outcome != "waiting",
        exists().where(later.schedule_id == ScheduleFiring.schedule_id,
                       later.fire_at > ScheduleFiring.fire_at)).limit(PRUNE_BATCH)
    removed = 0
    while True:
        with transaction(SERVICE) as session:
            ids = list(session.scalars(old))
            if ids:
                session.execute(delete(ScheduleFiring).where(ScheduleFiring.id.in_(ids)))
        removed += len(ids)
        if len(ids) < PRUNE_BATCH:
            return removed


def upcoming(workspace_id: str, count: int, now: datetime) -> list[Upcoming]:
    """The next `count` firings of the workspace's enabled schedules, soonest first."""
    with transaction(SERVICE) as session:
        rows = session.execute(select(Schedule, Experiment.title).join(
            Experiment, Experiment.id == Schedule.experiment_id).where(
            Experiment.workspace_id == workspace_id, Schedule.enabled.is_(True),
            Schedule.next_fire_at.is_not(None))).all()
        found = []
        for row, title in rows:
            for moment in view_of(row, now).next_fire_times:
                found.append(Upcoming(fire_at=moment.astimezone(UTC), schedule_id=row.id,
                                      experiment_id=row.experiment_id,
                                      experiment_title=title,
                                      created_by_name=row.created_by_name))
    return sorted(found, key=lambda u: (u.fire_at, u.schedule_id))[:count]


def describe(row: Schedule) -> dict[str, Any]:
    """What the audit log keeps of a schedule."""
    return {"schedule_id": row.id, "experiment_id": row.experiment_id, "kind": row.kind,
            "cron": row.cron, "at": row.once_at.isoformat() if row.once_at else None,
            "time_zone": row.time_zone, "enabled": row.enabled, "options": row.options,
            "missed": row.missed, "overlap": row.overlap,
            # Whom its firings act as: enabling a schedule again makes that its enabler.
            "runs_as": row.created_by_name, "runs_as_id": row.created_by}


def grace(tick: float) -> timedelta:
    """How late a firing may be and still count as on time (later: missed)."""
    return timedelta(seconds=max(60.0, 3 * tick))
