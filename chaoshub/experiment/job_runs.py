"""A hub run as a Kubernetes Job, from the worker's side: the run's own token, the Job, and how
the run ends once its Job has.

The worker keeps the run's lease and reads what the hub wants of it, as for a child process; the
pod's control reports the events and the journal into the run itself (k8s_jobs.py). So by the
time the Job ends the run is normally finished already: the worker then only settles a deadline,
and ends a run whose journal never came as interrupted, with the Job's reason.
"""

from __future__ import annotations

import logging
import math

from flask import current_app

from chaoshub.auth import service as auth
from chaoshub.dashboard.service import WorkspaceGrant
from chaoshub.experiment import environments, hub_runs, k8s_jobs, runs
from chaoshub.experiment.child import ChildOutcome, ChildSpec
from chaoshub.experiment.masking import Masker
from chaoshub.experiment.models import Run

log = logging.getLogger(__name__)

KUBERNETES = "kubernetes"
# The token outlives the run's deadline and grace by this much: the pod may wait to be
# scheduled, and its journal goes out at the very end.
TOKEN_MARGIN_SECONDS = 300


def refusal(grant: WorkspaceGrant) -> str:
    """Why the workspace's runs may not execute here: it asks for Jobs on a hub that runs
    none ("" when they may)."""
    if grant.run_policy.executor == KUBERNETES and \
            current_app.config["RUN_EXECUTOR"] != KUBERNETES:
        return "its workspace runs experiments as Kubernetes Jobs, which this hub does not " \
               "(RUN_EXECUTOR)"
    return ""


def supervise(row: Run, grant: WorkspaceGrant, spec: ChildSpec, wanted) -> ChildOutcome:
    """Run the run as a Job until it ends, with a token made for it alone, revoked at the end;
    `wanted` is the worker's lease (what the hub wants of the run)."""
    seconds = math.ceil(spec.deadline + spec.grace) + TOKEN_MARGIN_SECONDS
    try:
        api = k8s_jobs.cluster_api(current_app.config)
        settings = k8s_jobs.JobSettings.from_config(current_app.config, api.namespace)
        token = auth.mint_run_token(row.created_by, row.id, row.workspace_id, seconds)
    except Exception as exc:  # no cluster, no token: the run cannot start
        log.warning("run %s: its Job cannot be made: %s", row.id, exc)
        return ChildOutcome(None, None, "lost", 0, problem=f"its Kubernetes Job could not be "
                            f"made ({exc.__class__.__name__})")
    try:
        reporting = k8s_jobs.RunReporting(row.id, grant.org_name, grant.name, token)
        executor = k8s_jobs.JobExecutor(api, settings, reporting)
        return executor.supervise(spec, lambda _: None, _JobWish(row.id, wanted))
    finally:
        revoke(row.id)


def masked(row: Run, data):
    """What a hub run's reporter sent (events, a journal) with the values of its environment's
    secrets masked: a Job's pod reports its run itself, past the worker's masker."""
    if row.origin != "hub" or not (row.options or {}).get("environment_id"):
        return data
    values = environments.values_of_run(row.options)
    return Masker(values.secret_values).data(data) if values is not None else data


def revoke(run_id: str) -> None:
    """Revoke the run's token (its Job has ended); logged, not raised, when auth is away: the
    token expires with the run's deadline anyway."""
    try:
        auth.revoke_run_token(run_id)
    except Exception:
        log.warning("run %s: its token could not be revoked now; it expires on its own",
                    run_id, exc_info=True)


class _JobWish:
    """The worker's lease, except that a run whose journal came in is left to end its Job by
    itself (its pod is exiting) rather than be stopped."""

    def __init__(self, run_id: str, wanted):
        self.run_id, self.wanted = run_id, wanted

    def __call__(self) -> str | None:
        wish = self.wanted()
        if wish == "abort":
            row = runs.load_run(self.run_id)
            if row is not None and row.execution_id is not None and \
                    row.status not in hub_runs.ACTIVE:
                return None
        return wish


def conclude(row: Run, worker: str, outcome: ChildOutcome, status: str,
             reason: str | None) -> str:
    """End the run after its Job, which carried no journal: the control published it (the run
    is finished or, asked to stop, aborted) unless the pod never got that far. `status` and
    `reason` are what the worker makes of the outcome."""
    current = runs.load_run(row.id)
    if current is not None and current.execution_id is not None:
        if outcome.ended_by == "deadline" and current.status == "finished":
            hub_runs.settle(row.id, "aborted", reason)
            return "aborted"
        return current.status
    if status in ("finished", "interrupted") and outcome.ended_by == "exit":
        status = "interrupted"
        reason = "its Job ended without its journal: " + (
            outcome.problem or f"the pod exited with code {outcome.exit_code}")
    if hub_runs.end(row.id, status, reason, worker):
        return status
    ended = runs.load_run(row.id)
    return ended.status if ended is not None else status
