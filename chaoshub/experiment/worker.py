"""The worker: takes a queued hub run, runs it as a supervised child, keeps what it reports.

A worker holds a lease on the run it executes and renews it while the child runs; the reaper
(`hub_runs.reap`, called by every worker as it goes) ends as `interrupted` the runs whose worker
stopped renewing. Events go to the run as they come; the journal becomes the run's execution,
published as the person who started the run.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from typing import Any

from flask import Flask, current_app
from rq import Worker

from chaoshub.auth import service as auth
from chaoshub.core import db, process, request_ids
from chaoshub.core.db import transaction
from chaoshub.core.errors import HubError
from chaoshub.experiment import (
    child,
    environments,
    git_sync,
    grants,
    hub_runs,
    job_runs,
    queue,
    retention,
    run_checks,
    runs,
    sandbox,
    scheduler,
    webhook_delivery,
    workers,
)
from chaoshub.experiment.child import ChildOutcome, ChildSpec
from chaoshub.experiment.masking import Masker
from chaoshub.experiment.models import ExperimentVersion, Run
from chaoshub.experiment.writes import record_activity

log = logging.getLogger(__name__)

SERVICE = "experiment"
RENEW_SECONDS = 1.0  # how often a running run's lease is renewed and its desired state read
REAP_SECONDS = 5.0
_app: Flask | None = None  # an RQ worker's app, inherited by each forked work-horse
_parent: int | None = None  # the server an embedded worker belongs to


def worker_name() -> str:
    """This worker's name: its host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def execute(run_id: str, worker: str | None = None) -> str:
    """Run one queued run to its end; its final status ("" when it was not this worker's)."""
    worker = worker or worker_name()
    row = hub_runs.claim(run_id, worker, current_app.config["RUN_LEASE_SECONDS"])
    if row is None:
        return ""
    # Under the id of the request that queued it: its log lines, its calls to the other
    # services and its events are found by the id the person who started it was answered with.
    with request_ids.bound(row.request_id or f"run-{row.id}"):
        log.info("run %s: taken by %s (version %s of experiment %s)", row.id, worker,
                 row.version, row.experiment_id)
        status = _execute(row, worker)
        log.info("run %s: %s", row.id, status)
        return status


def _execute(row: Run, worker: str) -> str:
    run_id = row.id
    try:
        document = _document(row)
        reason, grant = _refusal(row, document)
        if reason:
            hub_runs.end(row.id, "refused", reason, worker)
            _tell_refusal(row, reason)
            return "refused"
        values = environments.values_of_run(row.options)  # its secrets, opened only here
        if values is None:
            hub_runs.end(row.id, "refused", "its environment was deleted", worker)
            return "refused"
        masker = Masker(values.secret_values)
        lease = _Lease(row.id, worker, current_app.config["RUN_LEASE_SECONDS"])
        spec = _spec(row, document, values)
        if grant.run_policy.executor == job_runs.KUBERNETES:
            # Its pod reports events and journal into the run itself (the hub masks them).
            outcome = job_runs.supervise(row, grant, spec, lease.wanted)
            return job_runs.conclude(row, worker, outcome, *_status(outcome))
        outcome = child.supervise(spec, _recorder(row.id, masker), lease.wanted)
    except Exception:  # the run must end whatever went wrong here
        log.exception("run %s: the worker failed", run_id)
        hub_runs.end(run_id, "interrupted", "the worker failed while running it", worker)
        return "interrupted"
    return _conclude(row, worker, outcome, masker)


def serve(app: Flask, burst: bool = False, parent: int | None = None) -> None:
    """Run queued runs until stopped: from Redis (RQ) when REDIS_URL is set, else by polling
    the database; fire schedules in a thread beside (not in a burst). With `parent`, stop when
    that process (the server) is gone."""
    global _parent
    _parent = parent
    process.hide_from_children()  # the runs' children read nothing of the worker's settings
    _check_sandbox(app.config["RUN_SANDBOX"])
    # Webhooks go out from a thread of their own: a long run never holds them back.
    webhook_delivery.start(app)
    # Syncs with git repositories too: never behind a long run.
    git_sync.start(app)
    if not burst:
        scheduler.start(app)  # schedules' firings, every SCHEDULER_TICK_SECONDS
    if app.config["REDIS_URL"]:
        serve_queue(app, burst)
        return
    with app.app_context():
        poll(until_idle=burst)


def _check_sandbox(mode: str) -> None:
    if mode == "off":
        return
    version = sandbox.abi()
    if mode == "landlock" and version < sandbox.FULL_ABI:
        raise SystemExit(f"RUN_SANDBOX=landlock needs Landlock ABI {sandbox.FULL_ABI} (Linux "
                         f"6.12) or later; this kernel offers {version or 'none'}")
    if version == 0:
        log.warning("this kernel offers no Landlock: runs are not confined (RUN_SANDBOX=auto)")
    elif sandbox.gaps(version):
        log.warning("Landlock ABI %s: runs are confined, but not from %s", version,
                    " or ".join(sandbox.gaps(version)))


def poll(until_idle: bool = False, idle_seconds: float = 0.5) -> int:
    """Take queued runs from the database one after the other (the worker without Redis);
    returns how many ran. With `until_idle`, stops when none waits."""
    done = 0
    last_reap = 0.0
    name = worker_name()
    workers.announce(name)
    while not _orphaned():
        if time.monotonic() - last_reap > REAP_SECONDS:
            reap()
            workers.heartbeat(name)
            retention.sweep_when_due()
            last_reap = time.monotonic()
        run_id = hub_runs.next_queued()
        if run_id is None:
            if until_idle:
                return done
            time.sleep(idle_seconds)
            continue
        if execute(run_id):
            done += 1
    return done


def serve_queue(app: Flask, burst: bool = False) -> None:
    """Take runs from the RQ queue until stopped, each in its own forked work-horse."""
    global _app
    _app = app
    with app.app_context():
        workers.announce(worker_name())
        runs_queue = queue.queue(app.config)
        enqueue_lost(runs_queue)
    RunWorker([runs_queue], connection=runs_queue.connection,
              maintenance_interval=REAP_SECONDS, worker_ttl=int(REAP_SECONDS) + 15,
              ).work(burst=burst, logging_level="INFO")


def enqueue_lost(runs_queue) -> list[str]:
    """Give its job to every queued run that has none on Redis (queued while Redis was away,
    before any worker started, or by a process that stopped between its commit and its
    enqueue); their ids. A second job for a run is harmless: one worker claims it."""
    lost = [run_id for run_id in hub_runs.queued_ids()
            if runs_queue.fetch_job(f"run-{run_id}") is None]
    for run_id in lost:
        queue.enqueue(run_id)
    return lost


def run_job(run_id: str) -> str:
    """The RQ job: run one queued run to its end, in the work-horse RQ forked for it."""
    if _app is None:
        raise RuntimeError("run_job runs only under `chaoshub worker`")
    db.forget_inherited(_app)
    with _app.app_context():
        # Named after the worker that forked this work-horse: that is the process people see.
        return execute(run_id, f"{socket.gethostname()}:{os.getppid()}")


class RunWorker(Worker):
    """An RQ worker that also reaps lost runs whenever it does its maintenance."""

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        if _orphaned():
            self.request_stop(signal.SIGTERM, None)
        if _app is not None:
            with _app.app_context():
                reap()
                # Not only at start: a scheduled run whose job was lost would otherwise wait
                # for a worker's restart, and its schedule skip every firing behind it.
                enqueue_lost(self.queues[0])
                workers.heartbeat(worker_name())
                # Here, not in a run's work-horse: what a sweep could not audit yet stays known.
                retention.sweep_when_due()


def _orphaned() -> bool:
    # An embedded worker whose server died (even by SIGKILL) stops too.
    return _parent is not None and os.getppid() != _parent


def _alive(name: str) -> None:
    try:
        workers.heartbeat(name)
    except Exception:  # a database hiccup: the next round says it
        log.warning("worker %s: could not say it lives", name, exc_info=True)


def reap() -> list[str]:
    """End the runs whose worker was lost; logs each."""
    try:
        reaped = hub_runs.reap()
    except Exception:  # a database hiccup: the next round reaps them
        log.warning("the reaper could not look for lost runs", exc_info=True)
        return []
    for run_id in reaped:
        log.warning("run %s: its worker was lost; the run is interrupted", run_id)
    return reaped


def _refusal(row: Run, document: dict[str, Any]) -> tuple[str, Any]:
    """Why the run may not start after all: the kill switch, the policy, its starter's
    rights, or an executor this hub lacks, as dashboard says now ("" when it may); and the
    grant it was decided from."""
    try:
        grant = grants.by_id(_reporter(row), row.workspace_id)
        grants.require(grant, "run")
    except HubError as exc:
        return f"its starter may no longer run experiments there ({exc.message})", None
    return run_checks.refusal(grant, document) or job_runs.refusal(grant), grant


def _tell_refusal(row: Run, reason: str) -> None:
    """Put the refusal in the org's feed and audit log, as its starter's doing."""
    try:
        claim = _reporter(row)
        grant = grants.by_id(claim, row.workspace_id)
    except HubError:
        return  # its starter is gone from there: the run's own reason says it all
    record_activity(row.created_by, grant.org_id, "run.refused",
                    f"{row.created_by_name} had a run refused: {reason}", row.workspace_id,
                    "executions", "A run was refused",
                    {"run_id": row.id, "experiment_id": row.experiment_id, "reason": reason},
                    f"run:{row.experiment_id}:{row.id}")


def _reporter(row: Run) -> str:
    # The person who started the run, with no more than the rights to report it: auth signs
    # it (a worker holds no signing key).
    return auth.run_claim(row.created_by, list(auth.RUN_REPORTING_SCOPES), row.id)


def _document(row: Run) -> dict[str, Any]:
    with transaction(SERVICE) as session:
        version = session.query(ExperimentVersion).filter_by(
            experiment_id=row.experiment_id, number=row.version).one()
        return version.document


def _spec(row: Run, document: dict[str, Any], values: environments.RunValues) -> ChildSpec:
    options = row.options or {}
    config = current_app.config
    strategy = options.get("rollback_strategy") or "default"
    return ChildSpec(
        experiment=document,
        deadline=min(options.get("max_seconds") or config["RUN_MAX_SECONDS"],
                     config["RUN_MAX_SECONDS"]),
        grace=config["RUN_GRACE_SECONDS"],
        dry=options.get("dry"),
        # An abort asks for rollbacks through SIGTERM, which chaoslib honours only under
        # "always"; that differs from "default" only for runs that fail or are interrupted,
        # and the hub's abort says itself whether rollbacks play.
        rollback_strategy="always" if strategy == "default" else strategy,
        # The run's own values go over its environment's.
        configuration={**values.configuration, **(options.get("configuration") or {})},
        secrets=values.secrets,
        environment=values.environment,
        sandbox=sandboxed(),
        sandbox_read=tuple(p for p in config["RUN_SANDBOX_READ"].split(":") if p),
    )


def sandboxed() -> bool:
    """Whether this worker's runs are confined: RUN_SANDBOX, and what the kernel offers."""
    mode = current_app.config["RUN_SANDBOX"]
    return mode == "landlock" or (mode == "auto" and sandbox.abi() > 0)


def _recorder(run_id: str, masker: Masker):
    def record(batch: list[dict[str, Any]]) -> None:
        # The child writes its events file itself: only events of the CLI's shape are kept.
        batch = [event for event in batch if not runs.event_problems([event])]
        if not batch:
            return
        try:
            runs.record_events(run_id, masker.data(batch))  # no secret is ever kept
        except HubError as exc:  # too many events: the journal still tells all
            log.warning("run %s: events not kept: %s", run_id, exc.message)
        except Exception:  # a database hiccup or an event it cannot hold: the run goes on
            log.warning("run %s: events not kept", run_id, exc_info=True)

    return record


class _Lease:
    """Renews the worker's lease on the run, and says whether the hub wants it stopped."""

    def __init__(self, run_id: str, worker: str, seconds: int):
        self.run_id, self.worker, self.seconds = run_id, worker, seconds
        self.renewed = 0.0
        self.reaped = 0.0
        self.desired: str | None = "run"

    def wanted(self) -> str | None:
        now = time.monotonic()
        if now - self.renewed >= RENEW_SECONDS:
            self.renewed = now
            self.desired = hub_runs.renew(self.run_id, self.worker, self.seconds)
        if now - self.reaped >= REAP_SECONDS:
            self.reaped = now
            reap()  # a busy worker reaps too: idle ones may be none
            _alive(self.worker)
        if self.desired is None:
            return "abort"  # no longer this worker's run (reaped or ended): stop it
        return None if self.desired == "run" else self.desired


def _conclude(row: Run, worker: str, outcome: ChildOutcome, masker: Masker) -> str:
    status, reason = _status(outcome)
    if outcome.journal is None:
        if status == "finished":
            status, reason = "interrupted", "the run ended without a journal"
        if not hub_runs.end(row.id, status, reason, worker):
            return _lost(row.id)
        return status
    if outcome.ended_by == "deadline":
        # The hub stopped it: its journal ends it aborted (and announced so), as an abort would.
        hub_runs.request_abort(row.id, True, reason)
    elif status == "finished" and outcome.journal.get("status") != "completed" \
            and _asked_to_stop(row.id):
        # Stopped by its control, which heard the abort (a kill switch's, say) before this
        # worker's next look: still the abort the hub asked for.
        status, reason = "aborted", None
    reporter = _reporter(row)
    # The service module starts workers (it is what `chaoshub worker` may import): imported
    # here, where the journal goes through its public function like any client's.
    from chaoshub.experiment import service

    try:
        service.finish_run(reporter, row.id, masker.data(outcome.journal))
    except HubError as exc:
        if not hub_runs.end(row.id, "interrupted", f"its journal was not kept: {exc.message}",
                            worker):
            return _lost(row.id)
        return "interrupted"
    if status != "finished":
        hub_runs.settle(row.id, status, reason)
    return status


def _asked_to_stop(run_id: str) -> bool:
    ended = runs.load_run(run_id)
    return ended is not None and ended.desired != "run"


def _lost(run_id: str) -> str:
    """The run ended without this worker (the reaper took it as lost): its outcome is not
    kept; the run's status as the hub holds it."""
    log.warning("run %s: no longer this worker's (its lease ran out): its outcome is not kept",
                run_id)
    ended = runs.load_run(run_id)
    return ended.status if ended is not None else ""


def _status(outcome: ChildOutcome) -> tuple[str, str | None]:
    if outcome.ended_by == "abort":
        return "aborted", None  # the reason it was given when asked to stop
    if outcome.ended_by == "deadline":
        return "aborted", "it ran past its maximum duration"
    if outcome.ended_by == "lost":
        return "interrupted", outcome.problem
    if outcome.journal is None:
        return "interrupted", "the run ended without a journal (exit code " \
                              f"{outcome.exit_code})"
    return "finished", ""
