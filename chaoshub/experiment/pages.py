"""The experiment and execution pages (server-rendered)."""

from __future__ import annotations

from urllib.parse import quote, urlparse

from flask import Blueprint, make_response, render_template, request

from chaoshub.core.errors import BadRequest, Forbidden, NotFound
from chaoshub.core.web import current_claim, external_url
from chaoshub.experiment import chart, moves, plan, service, version_diff

pages = Blueprint("experiment_pages", __name__)

OUTCOME_LABELS = {
    "passed": "Passed",
    "deviated": "Deviated",
    "baseline-not-met": "Steady state not met before the method",
    "probe-error": "A probe failed",
    "aborted": "Aborted",
    "interrupted": "Interrupted",
}


def _base(org: str, workspace: str, experiment_id: str) -> str:
    return f"/{quote(org, safe='')}/{quote(workspace, safe='')}/experiment/{experiment_id}"


def experiment_page(org: str, workspace: str, experiment_id: str):
    """The experiment page: its plan, versions, executions, and how to run it."""
    claim = current_claim()
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    experiment = located.experiment
    document = experiment.document
    base = _base(located.org, located.workspace, experiment_id)
    try:
        executions = service.list_executions(claim, experiment_id)
    except (NotFound, Forbidden):
        executions = []  # outsiders may see nothing of this workspace's runs
    hub = external_url("")
    hypothesis = document.get("steady-state-hypothesis") or {}
    html = render_template(
        "experiment/experiment.html",
        located=located, experiment=experiment, document=document, base=base,
        hypothesis_title=hypothesis.get("title", ""),
        sections=[
            ("Steady-state hypothesis", "hypothesis",
             [plan.activity(a) for a in hypothesis.get("probes") or []]),
            ("Method", "method", [plan.activity(a) for a in document.get("method") or []]),
            ("Rollbacks", "rollbacks",
             [plan.activity(a) for a in document.get("rollbacks") or []]),
        ],
        secrets=plan.secrets(document), configuration=plan.configuration(document),
        versions=service.list_versions(claim, experiment_id), executions=executions,
        outcome_labels=OUTCOME_LABELS, chart=chart.runs_chart(executions, OUTCOME_LABELS),
        run_command=f"chaos run {hub}{base}", netloc=urlparse(hub).netloc, hub=hub,
        move_targets=moves.destinations(claim, experiment.workspace_id),
    )
    return make_response(html)


@pages.get("/<org>/<workspace>/experiment/<experiment_id>/execution/<execution_id>")
def execution_page(org: str, workspace: str, experiment_id: str, execution_id: str):
    """An execution at a glance, its timeline and its steady states."""
    claim = current_claim()
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    execution = service.get_execution(claim, execution_id)
    if execution.experiment_id != experiment_id:
        raise NotFound("no such execution of this experiment")
    journal = service.get_journal(claim, execution_id) if execution.detailed else {}
    states = journal.get("steady_states") if isinstance(journal.get("steady_states"),
                                                          dict) else {}
    steady = []
    for phase in ("before", "after"):
        state = states.get(phase)
        if isinstance(state, dict):
            steady.append({"phase": phase, "met": state.get("steady_state_met"),
                           "probes": plan.run_entries(state.get("probes"))})
    base = _base(located.org, located.workspace, experiment_id)
    runs = service.list_executions(claim, experiment_id)
    return render_template(
        "experiment/execution.html",
        chart=chart.runs_chart(runs, OUTCOME_LABELS, current_id=execution_id),
        previous=chart.previous_run(runs, execution_id),
        located=located, experiment=located.experiment, execution=execution, base=base,
        method=plan.run_entries(journal.get("run")),
        rollbacks=plan.run_entries(journal.get("rollbacks")), steady=steady,
        interruption=journal.get("interruption") if isinstance(
            journal.get("interruption"), dict) else None,
        outcome_labels=OUTCOME_LABELS,
    )


@pages.get("/<org>/<workspace>/experiment/<experiment_id>/compare")
def compare_page(org: str, workspace: str, experiment_id: str):
    """Two runs of an experiment side by side: ?a=<execution id>&b=<execution id>."""
    claim = current_claim()
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    execution_a, execution_b = request.args.get("a"), request.args.get("b")
    if not execution_a or not execution_b:
        raise BadRequest("choose two runs to compare, from the experiment's page")
    comparison = service.compare_executions(claim, experiment_id, execution_a, execution_b)
    return render_template(
        "experiment/compare.html", located=located, experiment=located.experiment,
        comparison=comparison, base=_base(located.org, located.workspace, experiment_id),
        outcome_labels=OUTCOME_LABELS,
    )


@pages.get("/<org>/<workspace>/experiment/<experiment_id>/versions/diff")
def version_diff_page(org: str, workspace: str, experiment_id: str):
    """What changed between two versions of an experiment: ?from=<n>&to=<m>."""
    claim = current_claim()
    # The experiment first: who may not see it gets a 404 whatever the parameters say.
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    old = version_diff.requested(request.args, "from")
    new = version_diff.requested(request.args, "to")
    return render_template(
        "experiment/version_diff.html", located=located, experiment=located.experiment,
        changes=version_diff.changes(claim, experiment_id, old, new),
        base=_base(located.org, located.workspace, experiment_id),
    )
