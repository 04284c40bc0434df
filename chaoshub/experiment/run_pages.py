"""The run page (a run watched live), and the forms that start and abort runs from pages."""

from __future__ import annotations

from typing import get_args

from flask import Blueprint, redirect, render_template, request

from chaoshub.core.claims import verify
from chaoshub.core.errors import BadRequest, Conflict, NotFound, problem
from chaoshub.core.web import current_claim, signed_in_claim
from chaoshub.experiment import grants, live, run_timeline, service
from chaoshub.experiment.presenters import (
    ORIGIN_LABELS,
    STATUS_LABELS,
    experiment_path,
    run_body,
    run_path,
)
from chaoshub.experiment.runs import Dry, RollbackStrategy

run_pages = Blueprint("experiment_run_pages", __name__)

RUN = "/<org>/<workspace>/experiment/<experiment_id>/run/<run_id>"


@run_pages.get(RUN)
def run_page(org: str, workspace: str, experiment_id: str, run_id: str):
    """A run: its status, where it ran, its timeline so far (filled in live by run.js), its
    execution once it ends, and an Abort button for those who may run experiments."""
    claim = current_claim()
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    run = service.get_run(claim, run_id)
    if run.experiment_id != located.experiment.id:
        raise NotFound("no such run of this experiment")
    events = run_body(run)["events"]
    active = run.status not in live.ENDED
    may_run = grants.by_name(claim, org, workspace).allows("run")
    base = experiment_path(located.org, located.workspace, experiment_id)
    # The Chaos Toolkit extensions of the worker that ran it, while that worker lives.
    extensions = [] if run.origin != "hub" or verify(claim).anonymous else next(
        (w.extensions for w in service.list_workers(claim) if w.name == run.node), [])
    return render_template(
        "experiment/run.html", located=located, experiment=located.experiment, run=run,
        base=base, page=f"{base}/run/{run.id}", active=active,
        may_abort=active and may_run and not verify(claim).anonymous,
        timeline=run_timeline.timeline(events), status_labels=STATUS_LABELS,
        origin_labels=ORIGIN_LABELS, events_url=f"/api/v1/runs/{run.id}/events",
        extensions=extensions,
    )


@run_pages.post("/<org>/<workspace>/experiment/<experiment_id>/runs")
def start_from_page(org: str, workspace: str, experiment_id: str):
    """The experiment page's Run button: queue a run, then show its page."""
    claim = signed_in_claim()
    # The experiment must live where the URL says, as for the page the form is on.
    service.get_workspace_experiment(claim, org, workspace, experiment_id)
    dry = _choice("dry", get_args(Dry))
    strategy = _choice("rollback_strategy", get_args(RollbackStrategy))
    environment = request.form.get("environment") or None
    run = service.start_run(claim, experiment_id, None, dry, strategy, environment=environment)
    return redirect(run_path(run), code=303)


@run_pages.post(f"{RUN}/abort")
def abort_from_page(org: str, workspace: str, experiment_id: str, run_id: str):
    """The run page's Abort buttons: stop the run (with its rollbacks, unless the button said
    without), then show the run again."""
    claim = signed_in_claim()
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    rollbacks = request.form.get("rollbacks", "yes")
    if rollbacks not in ("yes", "no"):
        raise BadRequest("choose to abort with or without rollbacks",
                         [problem("rollbacks", "yes or no")])
    run = service.watch_run(claim, run_id)
    if run.experiment_id != located.experiment.id:
        raise NotFound("no such run of this experiment")
    try:
        service.abort_run(claim, run_id, rollbacks == "yes")
    except Conflict:
        pass  # it ended meanwhile: its page says how
    return redirect(run_path(run), code=303)


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.form.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        raise BadRequest("the run's options are not valid",
                         [problem(name, f"one of {', '.join(allowed)}")])
    return value
