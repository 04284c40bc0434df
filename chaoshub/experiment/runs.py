"""Runs reported by Chaos Toolkit clients: their rows, their events, and what the API shows.

A run is opened by the hub's control at the start of `chaos run`, receives the run's lifecycle
events as they happen (the vocabulary of the CLI's `--events-file`), and ends when its journal
arrives and becomes an execution. Events are untrusted input: each is checked, its outputs
capped, and a resent one (same `seq`) is kept once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from chaoshub.core import request_ids
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, NotFound, ValidationFailed
from chaoshub.core.models import utcnow
from chaoshub.core.schemas import Frozen
from chaoshub.experiment import journals, notifications, run_stream, store
from chaoshub.experiment.hub_runs import ACTIVE
from chaoshub.experiment.models import Experiment, ExperimentVersion, Run, RunEvent
from chaoshub.experiment.schemas import ExecutionView

SERVICE = "experiment"

# The chaostoolkit CLI's `--events-file` vocabulary (chaostoolkit/events.py), so runs started
# by the hub and runs reported from a laptop read the same.
EVENT_TYPES = frozenset({
    "run-started", "hypothesis-started", "hypothesis-completed", "method-started",
    "method-completed", "activity-started", "activity-completed", "rollbacks-started",
    "rollbacks-completed", "run-interrupted", "run-signal-exit", "run-finished",
})
STATUSES = ("queued", "running", "finished", "aborted", "interrupted", "refused")
MAX_OUTPUT_SIZE = 4096  # bytes of serialised output kept per activity, as the CLI does
MAX_TEXT = 4096  # error messages and other strings of an event
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH = 500
MAX_EVENTS_PER_RUN = 10_000
MAX_SEQ = 2**31 - 1  # the column is a 32-bit integer on every database


class RunEventView(Frozen):
    """One event of a run, as stored."""

    seq: int
    type: str
    timestamp: datetime | None
    data: dict[str, Any]
    request_id: str = ""  # the request it came in with (a hub run's: the one that queued it)


class RunView(Frozen):
    """A run, where it lives, and (for those who may see them) its events so far."""

    id: str
    experiment_id: str
    workspace_id: str
    org: str = ""
    workspace: str = ""
    status: str
    desired: str
    origin: str = "client"  # where it ran: "hub" (a worker) or "client" (a laptop, a CI job)
    version: int | None = None  # the experiment's version a hub run executes
    environment: str = ""  # the workspace's environment a hub run was started in
    reason: str = ""  # why it was refused, aborted or interrupted
    started_at: datetime | None = None
    node: str
    created_by: str
    created_by_name: str
    created_at: datetime
    finished_at: datetime | None
    execution_id: str | None
    last_seq: int
    event_count: int
    request_id: str = ""  # the request that queued or opened it, for finding it in the logs
    events: list[RunEventView] = []
    detailed: bool = True


Dry = Literal["activities", "actions", "probes", "pause"]
RollbackStrategy = Literal["default", "always", "never", "deviated"]
ConfigurationValue = str | int | float | bool


class RunResult(Frozen):
    """A run as a caller waiting for its end sees it: whether it has ended, and the execution
    it became (its status only: the outcome, never its details), if any."""

    run: RunView
    ended: bool
    execution: ExecutionView | None = None


class RunPage(Frozen):
    """One page of an experiment's runs, without their events, and the next page's cursor."""

    runs: list[RunView]
    next_cursor: str | None


class RunState(Frozen):
    """What the hub wants the client running the experiment to do."""

    desired: str


class EventsRecorded(Frozen):
    """The answer to a batch of events: how many were new, and the highest `seq` kept."""

    accepted: int
    duplicates: int
    last_seq: int


class FinishedRun(Frozen):
    """A run after its journal came in, the execution it became, and whether this call made
    it (False: a repeat)."""

    run: RunView
    execution: ExecutionView
    created: bool


# Events --------------------------------------------------------------------------------------


def event_problems(events: Any) -> list[dict[str, str]]:
    """What makes a batch of events unusable, each with its JSON Pointer; empty when usable."""
    if not isinstance(events, list) or not events:
        return [{"pointer": "", "message": "send one event object or a non-empty list of them"}]
    if len(events) > MAX_BATCH:
        return [{"pointer": "", "message": f"send at most {MAX_BATCH} events at once"}]
    found = []
    previous = 0
    for position, event in enumerate(events):
        where = f"/{position}"
        if not isinstance(event, dict):
            found.append({"pointer": where, "message": "an event must be a JSON object"})
            continue
        seq = event.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
            found.append({"pointer": f"{where}/seq",
                          "message": f"seq must be a whole number from 1 to {MAX_SEQ}"})
        elif seq <= previous:
            found.append({"pointer": f"{where}/seq",
                          "message": "seq must increase from one event to the next"})
        else:
            previous = seq
        if event.get("type") not in EVENT_TYPES:
            found.append({"pointer": f"{where}/type",
                          "message": f"type must be one of {', '.join(sorted(EVENT_TYPES))}"})
        timestamp = event.get("timestamp")
        if timestamp is not None and journals.timestamp(timestamp) is None:
            found.append({"pointer": f"{where}/timestamp",
                          "message": "timestamp must be an RFC 3339 date and time"})
    return found


def bounded_output(output: Any) -> dict[str, Any]:
    """`{"output": ...}` when it is small enough, else a marker (the journal has it whole)."""
    serialized = json.dumps(output, ensure_ascii=False, default=str)
    if len(serialized.encode()) > MAX_OUTPUT_SIZE:
        return {"output_truncated": True, "output_size": len(serialized.encode())}
    return {"output": output}


def event_data(event: dict[str, Any]) -> dict[str, Any]:
    """What is kept of an event besides its seq, type and timestamp: outputs capped, strings
    cut, and nothing at all past MAX_EVENT_BYTES but a marker."""
    # The request id is the hub's to say (the request the event came in with).
    data = {k: v for k, v in event.items()
            if k not in ("seq", "type", "timestamp", "request_id")}
    data = _capped(data)
    if len(json.dumps(data, ensure_ascii=False, default=str).encode()) > MAX_EVENT_BYTES:
        kept = {k: v for k, v in data.items()
                if k in ("name", "activity_type", "status", "phase", "met", "deviated",
                         "duration", "title")
                and (not isinstance(v, str) or len(v) <= 500)}
        return {**kept, "data_truncated": True}
    return data


def _capped(data: dict[str, Any]) -> dict[str, Any]:
    capped: dict[str, Any] = {}
    for key, value in data.items():
        if key == "output":
            capped.update(bounded_output(value))
        elif key == "probes" and isinstance(value, list):
            capped[key] = [_capped(p) if isinstance(p, dict) else None for p in value[:100]]
        elif isinstance(value, str):
            capped[key] = journals.text(value, MAX_TEXT)
        else:
            capped[key] = value
    return capped


# Rows ----------------------------------------------------------------------------------------


def add_run(experiment_id: str, workspace_id: str, user_id: str, user_name: str,
            node: str, idempotency_key: str | None = None) -> str:
    """Open a run of the experiment; returns its id. With `idempotency_key` (from
    store.idempotency_key), the run this user opened with that key before, if any."""
    if idempotency_key and (earlier := _run_by_key(user_id, idempotency_key, workspace_id)):
        return earlier
    try:
        with transaction(SERVICE) as session:
            # Locked where the run was authorized: a move cannot slip in before the insert.
            store.experiment_in(session, experiment_id, workspace_id)
            row = Run(experiment_id=experiment_id, workspace_id=workspace_id, status="running",
                      desired="run", node=journals.text(node, 500), created_by=user_id,
                      created_by_name=journals.text(user_name, 500),
                      request_id=request_ids.current() or "", idempotency_key=idempotency_key,
                      last_seq=0, event_count=0, created_at=utcnow())
            session.add(row)
            session.flush()
            notifications.run_changed(session, row, "run.started")
            return row.id
    except IntegrityError:
        # The same key racing in from a retry: the first one is the answer.
        if idempotency_key and (earlier := _run_by_key(user_id, idempotency_key, workspace_id)):
            return earlier
        raise


def _run_by_key(user_id: str, key: str, workspace_id: str) -> str | None:
    with transaction(SERVICE) as session:
        earlier = session.execute(select(Run.id, Run.workspace_id).where(
            Run.created_by == user_id, Run.idempotency_key == key)).first()
    if earlier is None:
        return None
    if earlier.workspace_id != workspace_id:
        raise Conflict("this Idempotency-Key opened a run in another workspace: send a new one")
    return earlier.id


def experiment_with_content(workspace_id: str, content_hash: str) -> str | None:
    """The workspace's most recently updated experiment that has a version with this content:
    running the same file again reports to the same experiment."""
    with transaction(SERVICE) as session:
        return session.scalar(
            select(Experiment.id).join(ExperimentVersion,
                                       ExperimentVersion.experiment_id == Experiment.id)
            .where(Experiment.workspace_id == workspace_id,
                   ExperimentVersion.content_hash == content_hash)
            .order_by(Experiment.updated_at.desc(), Experiment.id.desc()).limit(1))


def load_run(run_id: Any) -> Run | None:
    """A run row, detached, or None."""
    if not isinstance(run_id, str) or len(run_id) > 36:
        return None
    with transaction(SERVICE) as session:
        row = session.get(Run, run_id)
        if row is not None:
            session.expunge(row)
        return row


def load_events(run_id: str) -> list[RunEventView]:
    """The events of a run in `seq` order."""
    with transaction(SERVICE) as session:
        rows = session.scalars(select(RunEvent).where(RunEvent.run_id == run_id)
                               .order_by(RunEvent.seq))
        return [RunEventView(seq=r.seq, type=r.type, timestamp=r.timestamp, data=r.data,
                             request_id=r.request_id)
                for r in rows]


def record_events(run_id: str, events: list[dict[str, Any]]) -> EventsRecorded:
    """Keep the events of a checked batch that are new; a `seq` seen before is skipped. Those
    kept are then published on the run's stream for the people watching it."""
    try:
        recorded, kept = _record(run_id, events)
    except IntegrityError:
        # The same batch raced in from a retry: the other request stored it first.
        recorded, kept = _record(run_id, events)
    # After the commit: a viewer told of an event finds it in the database too.
    run_stream.publish(run_id, kept)
    return recorded


def _record(run_id: str, events: list[dict[str, Any]]
            ) -> tuple[EventsRecorded, list[dict[str, Any]]]:
    with transaction(SERVICE) as session:
        # Locked so that two batches of one run never both count the same events.
        run = session.scalar(select(Run).where(Run.id == run_id).with_for_update())
        if run is None:
            raise NotFound("no such run")
        seqs = [e["seq"] for e in events]
        seen = set(session.scalars(select(RunEvent.seq).where(
            RunEvent.run_id == run_id, RunEvent.seq.in_(seqs))))
        new = [e for e in events if e["seq"] not in seen]
        if new and run.status == "finished":
            raise Conflict("the run has finished: its journal is in, it takes no more events")
        if new and run.status not in ACTIVE:
            # Its worker was lost (or it was stopped): a worker that comes back is refused.
            raise Conflict(f"the run has ended ({run.status}): it takes no more events")
        if run.event_count + len(new) > MAX_EVENTS_PER_RUN:
            raise ValidationFailed(f"a run keeps at most {MAX_EVENTS_PER_RUN} events", [
                {"pointer": "", "message": "too many events for one run"}])
        received = utcnow()
        request_id = request_ids.current() or ""
        kept = []
        for event in new:
            timestamp = journals.timestamp(event.get("timestamp"))
            data = event_data(event)
            session.add(RunEvent(run_id=run_id, seq=event["seq"], type=event["type"],
                                 timestamp=timestamp, data=data, received_at=received,
                                 request_id=request_id))
            kept.append({"seq": event["seq"], "type": event["type"],
                         "timestamp": timestamp.isoformat() if timestamp else None, **data})
        session.flush()
        run.event_count = session.scalar(select(func.count()).select_from(RunEvent).where(
            RunEvent.run_id == run_id))
        run.last_seq = max([run.last_seq, *seqs])
        return EventsRecorded(accepted=len(new), duplicates=len(events) - len(new),
                              last_seq=run.last_seq), kept


def refuse_late_journal(run: Run) -> None:
    """Refuse the journal of a hub run that ended without it (its worker was lost, or it was
    stopped): the worker that comes back after the reaper ended its run changes nothing."""
    if run.origin == "hub" and run.execution_id is None and run.status not in ACTIVE:
        raise Conflict(f"the run has ended ({run.status}) without its journal: it takes none now")


def mark_finished(run_id: str, execution_id: str, outcome: str | None = None) -> Run:
    """Record that the run's journal became `execution_id` (the first time only), and
    announce how it ended (by its execution's `outcome`; aborted when it was asked to stop)."""
    with transaction(SERVICE) as session:
        run = session.scalar(select(Run).where(Run.id == run_id).with_for_update())
        if run is None:
            raise NotFound("no such run")
        if run.status in ("queued", "refused") or (run.status == "aborted"
                                                     and run.started_at is None
                                                     and run.origin == "hub"):
            raise Conflict(f"the run never ran ({run.status}): it has no journal to take")
        refuse_late_journal(run)
        if run.status != "finished" or run.execution_id is None:
            run.status = "finished"
            run.execution_id = execution_id
            run.finished_at = run.finished_at or utcnow()
            run.lease_until = None
            session.flush()
            told = "run.aborted" if run.desired != "run" else notifications.OUTCOME_EVENTS.get(
                outcome or "", "run.finished")
            notifications.run_changed(session, run, told, outcome)
        session.flush()
        session.expunge(run)
        return run


def run_view(row: Run, org: str, workspace: str, events: list[RunEventView] | None,
             detailed: bool = True) -> RunView:
    """The plain view of a run; outsiders who may see only statuses get no node or events."""
    return RunView(
        id=row.id, experiment_id=row.experiment_id, workspace_id=row.workspace_id, org=org,
        workspace=workspace, status=row.status, desired=row.desired, origin=row.origin,
        version=row.version, reason=row.reason, started_at=row.started_at,
        environment=str((row.options or {}).get("environment") or "") if detailed else "",
        node=row.node if detailed else "", created_by=row.created_by if detailed else "",
        created_by_name=row.created_by_name if detailed else "", created_at=row.created_at,
        finished_at=row.finished_at, execution_id=row.execution_id, last_seq=row.last_seq,
        event_count=row.event_count, request_id=row.request_id if detailed else "",
        events=(events or []) if detailed else [],
        detailed=detailed,
    )

