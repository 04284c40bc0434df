"""Whether a run may start: the org's kill switch, the workspace's run policy (its allowed
windows too: a hub run asked for outside them is refused), its limit of runs at once, and a
dry run before a version's first real run where the policy asks for one.

Checked when a run is asked for and again by the worker before it starts the child, from a
grant asked of dashboard each time (a policy or a kill switch may change in between).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, Forbidden, problem
from chaoshub.core.models import utcnow
from chaoshub.dashboard.service import WorkspaceGrant
from chaoshub.experiment import hub_runs, policy, run_windows, workers
from chaoshub.experiment.models import Run

SERVICE = "experiment"


def check_start(grant: WorkspaceGrant, experiment_id: str, version: int,
                document: dict[str, Any], dry: str | None, at: datetime | None = None,
                replacing: bool = False) -> None:
    """Raise unless a run of the experiment's `version` may be queued now (or `at`: a
    schedule's firing) (409 or 403); `replacing`: the experiment's own runs are aborted
    for it, and count for nothing."""
    if grant.kill_switch.engaged:
        raise Conflict(f"the org's kill switch is engaged ({grant.kill_switch.reason}): no run "
                       "starts until it is released")
    outside = run_windows.refusal(grant.run_policy, at or utcnow())
    if outside:
        raise Conflict(f"no run starts now: {outside}")
    live = workers.live()
    extensions = frozenset(m for w in live for e in w.extensions for m in e.modules) \
        if live else None
    found = policy.violations(document, grant.run_policy, extensions)
    if found:
        raise Forbidden("the workspace's run policy does not allow this experiment", found)
    missing = workers.missing_modules(document)
    if missing:
        raise Conflict("no worker of this hub can run this experiment", missing)
    others = experiment_id if replacing else None
    if active_in_workspace(grant.id, others) >= grant.run_policy.max_concurrent_runs:
        raise Conflict(f"the workspace runs {grant.run_policy.max_concurrent_runs} experiments "
                       "at once at most: wait for one to end")
    if grant.run_policy.dry_run_first and not dry and not dry_run_passed(experiment_id,
                                                                         version):
        raise Forbidden("the workspace's run policy asks for a dry run of this version first",
                        [problem("dry", "run version "
                                 f"{version} with \"dry\": \"activities\" first")])


def refusal(grant: WorkspaceGrant, document: dict[str, Any]) -> str:
    """Why the worker must not start a run after all ("" when it may)."""
    if grant.kill_switch.engaged:
        return f"the org's kill switch is engaged: {grant.kill_switch.reason}"
    here = frozenset(m for e in workers.installed_extensions() for m in e.modules)
    found = policy.violations(document, grant.run_policy, here)
    if found:
        return "the workspace's run policy does not allow it: " + "; ".join(
            f"{p['pointer']}: {p['message']}" for p in found)
    return ""


def active_in_workspace(workspace_id: str, except_experiment: str | None = None) -> int:
    """How many hub runs of the workspace are queued or running (but `except_experiment`'s)."""
    conditions = [Run.workspace_id == workspace_id, Run.origin == "hub",
                  Run.status.in_(hub_runs.ACTIVE)]
    if except_experiment is not None:
        conditions.append(Run.experiment_id != except_experiment)
    with transaction(SERVICE) as session:
        return session.scalar(select(func.count()).select_from(Run).where(*conditions))


def dry_run_passed(experiment_id: str, version: int) -> bool:
    """True when a dry hub run of this version has finished on a worker."""
    with transaction(SERVICE) as session:
        finished = session.scalars(select(Run.options).where(
            Run.experiment_id == experiment_id, Run.version == version, Run.origin == "hub",
            Run.status == "finished", Run.worker != "", Run.started_at.is_not(None)))
        return any((options or {}).get("dry") for options in finished)
