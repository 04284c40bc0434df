"""The workspace, experiment and execution pages (server-rendered)."""

from __future__ import annotations

import functools
from urllib.parse import quote, urlencode

from flask import Blueprint, make_response, redirect, render_template, request
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from chaoshub.core.claims import verify
from chaoshub.core.errors import BadRequest, Forbidden, HubError, NotFound, Unauthorized
from chaoshub.core.web import current_claim, external_url, signed_in_claim
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment import (
    bodies,
    chart,
    environments,
    grants,
    guide,
    moves,
    plan,
    run_timeline,
    service,
    use_it,
    version_diff,
    versions,
)
from chaoshub.experiment.presenters import OUTCOME_LABELS, STATUS_LABELS, experiment_path
from chaoshub.experiment.schedules import ScheduleFields
from chaoshub.experiment.trend_views import trends_context

pages = Blueprint("experiment_pages", __name__)
RENDERED = bodies.RenderedDocuments()

EXPERIMENTS_SHOWN = 20
RUNS_SHOWN = 5
# The query string of the workspace page's experiment list, as the listing API names them.
LISTING_FILTERS = ("search", "tag", "contribution", "author", "last_run", "sort")
SCHEDULES = "/<org>/<workspace>/experiment/<experiment_id>/schedules"
# The schedule form's choices, as the API names them.
FORM_CHOICES = {"dry": ("probes", "actions", "activities", "pause"),
                "rollback_strategy": ("always", "never", "deviated"),
                "missed": ("skip", "run_once"), "overlap": ("skip", "queue", "abort")}


@pages.get("/<org>/<workspace>")
def workspace_page(org: str, workspace: str):
    """A workspace: its visibility, its experiments, its members and its feed."""
    try:
        return _workspace_page(current_claim(), org, workspace)
    except Unauthorized:
        # As on dashboard's pages: a visitor is sent to sign in, then back here.
        return redirect("/signin?next=" + quote(request.full_path.rstrip("?")), code=302)


def _workspace_page(claim: str, org: str, workspace: str):
    ws = grants.by_name(claim, org, workspace)
    if org.lower() != ws.org_name.lower():  # a former name of the org: to its current one
        target = f"/{quote(ws.org_name, safe='')}/{quote(workspace, safe='')}"
        if request.query_string:
            target += "?" + request.query_string.decode("latin-1")
        return redirect(target, code=301)
    # Dashboard's parts of the page, asked for below: those with a role here see who else was
    # given one (others see no member list at all), everyone sees the feed.
    members = (dashboard.list_workspace_members(claim, ws.org_name, ws.name)
               if ws.allows("list_members") else None)
    # The reader among them, found by account: their row offers "Leave".
    me = next((m.username for m in members or () if m.account_id == verify(claim).sub), None)
    listing = _experiments(claim, org, workspace, ws)
    # An empty workspace, unfiltered, shows those who may write here how to make a first run.
    empty = not listing["rows"] and not listing["filters"] and not listing["problem"]
    html = render_template(
        "dashboard/workspace.html", ws=ws, listing=listing,
        guide=guide.first_run_steps(ws.org_name, ws.name)
        if empty and "write" in ws.allowed and not request.args.get("cursor") else None,
        outcomes=service.LAST_RUN_FILTERS,
        feed=dashboard.workspace_activity(claim, ws.org_name, ws.name), members=members, me=me,
        grantable=dashboard.grantable(ws.role), error=None, problems={}, form={},
        in_progress=service.runs_in_progress(claim, ws.org_name, ws.name),
        run_statuses=STATUS_LABELS,
        **trends_context(lambda: service.workspace_trends(claim, ws.org_name, ws.name)),
    )
    return make_response(html)


def _experiments(claim: str, org: str, workspace: str, ws) -> dict:
    """The page of the workspace's experiments the query string asks for (filters, order,
    cursor), each with its last run's outcome, and the link to the next page."""
    asked = {name: request.args[name].strip() for name in LISTING_FILTERS
             if request.args.get(name, "").strip()}
    if asked.get("sort") == "updated":
        del asked["sort"]  # the default order: not a filter to clear
    cursor = request.args.get("cursor") or None
    listing = {"filters": asked, "rows": [], "next_url": None, "problem": None,
               "first_url": _listing_url(ws, asked) if cursor else None}
    try:
        # The names as the URL gave them: the grant just asked for is kept under those.
        page = service.list_experiments(claim, org, workspace, cursor=cursor,
                                        limit=EXPERIMENTS_SHOWN, **asked)
    except HubError as error:
        # The page is the workspace's: it still shows, saying why nothing is listed.
        listing["problem"] = error.message
        return listing
    # The listing carries each experiment's last run, blank for readers who may not see runs.
    listing["rows"] = [{"experiment": found, "outcome": found.last_run_outcome}
                       for found in page.experiments]
    if page.next_cursor:
        listing["next_url"] = _listing_url(ws, {**asked, "cursor": page.next_cursor})
    return listing


def _listing_url(ws, args: dict[str, str]) -> str:
    path = f"/{quote(ws.org_name, safe='')}/{quote(ws.name, safe='')}"
    return f"{path}?{urlencode(args)}#experiments" if args else f"{path}#experiments"


@pages.get("/<org>/<workspace>/experiment/<experiment_id>")
def experiment(org: str, workspace: str, experiment_id: str):
    """The experiment page for browsers; its document, with the hub's extension, for `chaos
    run` (any client whose Accept does not name text/html)."""
    if _is_browser():
        response = experiment_page(org, workspace, experiment_id)
    else:
        located = service.get_workspace_experiment(current_claim(), org, workspace,
                                                   experiment_id)
        path = experiment_path(located.org, located.workspace, experiment_id)
        url = external_url(path)
        stored = located.experiment
        # Read by chaoslib on every `chaos run`, not by people: compact, and rendered once.
        response = RENDERED.answer(
            (stored.id, stored.version, stored.updated_at, url, located.org, located.workspace),
            lambda: versions.with_hub_extension(stored.document, {
                "name": versions.HUB_EXTENSION, "experiment": experiment_id, "self": url,
                "organization": located.org, "workspace": located.workspace}),
            bodies.wants_yaml())
    response.headers["Vary"] = "Accept"
    return response


@pages.after_request
def _challenge(response):
    # `chaos run` reads the document with an API token, as the legacy CLI API's clients do:
    # a refusal names the scheme it must use.
    if request.endpoint == "experiment_pages.experiment" and response.status_code in (401, 403):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _is_browser() -> bool:
    return _names_html(request.headers.get("Accept", ""))


@functools.lru_cache(maxsize=256)
def _names_html(accept: str) -> bool:
    # Named explicitly: `*/*` (old chaoslib) matches text/html but is not a browser. Each
    # header parsed once per process: `chaos run` sends the same one on every read.
    return any(value.lower() in ("text/html", "application/xhtml+xml") and quality > 0
               for value, quality in parse_accept_header(accept, MIMEAccept))


def experiment_page(org: str, workspace: str, experiment_id: str,
                    schedule_error: HubError | None = None, schedule_form=None):
    """The experiment page: its plan, versions, executions, schedules, and how to run it
    (with the schedule form's refusal and what was sent, when it was refused)."""
    claim = current_claim()
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    experiment = located.experiment
    document = experiment.document
    base = experiment_path(located.org, located.workspace, experiment_id)
    try:
        executions = service.list_executions(claim, experiment_id)
    except (NotFound, Forbidden):
        executions = []  # outsiders may see nothing of this workspace's runs
    hub = external_url("")
    hypothesis = document.get("steady-state-hypothesis") or {}
    may_run = (not verify(claim).anonymous
               and grants.by_name(claim, org, workspace).allows("run"))
    run_environments = _environment_names(claim, org, workspace) if may_run else []
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
        use_it=use_it.commands(hub, located.org, located.workspace, hub + base),
        move_targets=moves.destinations(claim, experiment.workspace_id),
        recent_runs=_recent_runs(claim, experiment_id), may_run=may_run,
        run_statuses=STATUS_LABELS, run_environments=run_environments,
        schedules=_schedules(claim, experiment_id), schedule_error=schedule_error,
        schedule_form=schedule_form,
    )
    return make_response(html)


def _schedules(claim: str, experiment_id: str) -> list:
    """The experiment's schedules (none for a token that may not read experiments)."""
    try:
        return service.list_schedules(claim, experiment_id, limit=100).schedules
    except (NotFound, Forbidden):
        return []


def _environment_names(claim: str, org: str, workspace: str) -> list[str]:
    """The workspace's environments a run may be started in (a token without runs:execute
    sees none)."""
    try:
        page = environments.list_environments(claim, org, workspace, limit=100)
    except HubError:
        return []
    return [e.name for e in page.environments]


def _recent_runs(claim: str, experiment_id: str) -> list:
    """The experiment's latest runs (on the hub and from clients), those in progress too."""
    try:
        return service.page_runs(claim, experiment_id, limit=RUNS_SHOWN).runs
    except (NotFound, Forbidden):
        return []  # outsiders may see nothing of this workspace's runs


# The schedules section's forms ------------------------------------------------------------


@pages.post(SCHEDULES)
def create_schedule(org: str, workspace: str, experiment_id: str):
    """The experiment page's form that adds a schedule."""
    form = request.form
    kind = "once" if form.get("kind") == "once" else "cron"
    given = {"kind": kind, "time_zone": form.get("time_zone", "").strip() or "UTC",
             "environment": form.get("environment") or None,
             **{name: form.get(name) for name in FORM_CHOICES
                if form.get(name) in FORM_CHOICES[name]}}
    if kind == "once":
        given["at"] = form.get("at", "").strip()
    else:
        given["cron"] = form.get("cron", "").strip()
    fields = ScheduleFields(**given)
    return _schedule_act(org, workspace, experiment_id,
                         lambda claim: service.create_schedule(claim, experiment_id, fields))


@pages.post(f"{SCHEDULES}/<schedule_id>/enabled")
def set_enabled(org: str, workspace: str, experiment_id: str, schedule_id: str):
    """The button that enables or disables a schedule."""
    fields = ScheduleFields(enabled=request.form.get("enabled") == "on")
    return _schedule_act(org, workspace, experiment_id,
                         lambda claim: service.update_schedule(claim, schedule_id, fields))


@pages.post(f"{SCHEDULES}/<schedule_id>/delete")
def delete_schedule(org: str, workspace: str, experiment_id: str, schedule_id: str):
    """The button that deletes a schedule."""
    return _schedule_act(org, workspace, experiment_id,
                         lambda claim: service.delete_schedule(claim, schedule_id))


def _schedule_act(org: str, workspace: str, experiment_id: str, change):
    claim = signed_in_claim()
    try:
        change(claim)
    except HubError as error:
        if error.status >= 500:
            raise
        response = make_response(experiment_page(org, workspace, experiment_id,
                                                 schedule_error=error,
                                                 schedule_form=request.form))
        response.status_code = error.status
        return response
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    path = experiment_path(located.org, located.workspace, experiment_id)
    return redirect(f"{path}?scheduled=1#schedules", code=303)


@pages.get("/<org>/<workspace>/experiment/<experiment_id>/execution/<execution_id>")
def execution_page(org: str, workspace: str, experiment_id: str, execution_id: str):
    """An execution at a glance, its timeline and its steady states."""
    claim = current_claim()
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    execution = service.get_execution(claim, execution_id)
    if execution.experiment_id != experiment_id:
        raise NotFound("no such execution of this experiment")
    try:
        journal = service.get_journal(claim, execution_id) if execution.detailed else {}
    except NotFound:
        journal = {}  # retention removed it: the execution's summary still shows
    states = journal.get("steady_states") if isinstance(journal.get("steady_states"),
                                                          dict) else {}
    steady = []
    for phase in ("before", "after"):
        state = states.get(phase)
        if isinstance(state, dict):
            steady.append({"phase": phase, "met": state.get("steady_state_met"),
                           "probes": run_timeline.journal_entries(state.get("probes"))})
    base = experiment_path(located.org, located.workspace, experiment_id)
    runs = service.list_executions(claim, experiment_id)
    return render_template(
        "experiment/execution.html",
        chart=chart.runs_chart(runs, OUTCOME_LABELS, current_id=execution_id),
        previous=chart.previous_run(runs, execution_id),
        located=located, experiment=located.experiment, execution=execution, base=base,
        method=run_timeline.journal_entries(journal.get("run")),
        rollbacks=run_timeline.journal_entries(journal.get("rollbacks")), steady=steady,
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
        comparison=comparison, base=experiment_path(located.org, located.workspace, experiment_id),
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
        base=experiment_path(located.org, located.workspace, experiment_id),
    )
