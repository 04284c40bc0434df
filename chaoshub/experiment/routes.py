"""Experiment's HTTP face: the JSON API under /api/v1."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request

from chaoshub.core.openapi import DocumentAnswers, answers, docs, query
from chaoshub.core.paging import PageQuery
from chaoshub.core.web import current_claim, external_url, signed_in_claim
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment import api_models as m
from chaoshub.experiment import bodies, reports, service
from chaoshub.experiment.presenters import (
    OUTCOME_LABELS,
    execution_body,
    saved_body,
    serialize,
)
from chaoshub.experiment.schemas import (
    ExecutionView,
    VersionView,
)
from chaoshub.experiment.trends import Trends

api = Blueprint("experiment_api", __name__, url_prefix="/api/v1")

# A report is a file of its own, opened from a disk: it may style itself, and load nothing.
REPORT_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                 "form-action 'none'; frame-ancestors 'none'")


# Experiments -------------------------------------------------------------------------------


@api.post("/orgs/<org>/workspaces/<workspace>/experiments")
@docs.validate(query=m.WriteQuery, json=m.ExperimentDocument, tags=["experiments"],
               resp=answers(m.Experiment, 400, 401, 403, 404, 413, 422, status=201))
def create_experiment(org: str, workspace: str):
    """Add an experiment (a JSON or YAML document) to a workspace."""
    claim = bodies.writer_claim(service.WRITE_SCOPE)
    service.authorize_write(claim, "write", org=org, workspace=workspace)
    document = bodies.read_object("EXPERIMENT_MAX_BYTES", "experiment", yaml_allowed=True)
    experiment = service.create_experiment(claim, org, workspace, document,
                                           query(m.WriteQuery).message)
    response = jsonify(serialize(experiment))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/experiments/{experiment.id}"
    return response


@api.get("/orgs/<org>/workspaces/<workspace>/experiments")
@docs.validate(query=m.ListQuery, resp=answers(m.ExperimentList, 400, 401, 403, 404),
               tags=["experiments"])
def list_experiments(org: str, workspace: str):
    """A page of a workspace's experiments: ?tag=, ?search= (the start of the title or of a
    word of title or description), ?contribution= (a quality it tells about), ?last_run= (an
    outcome, or none), ?author= (the creator's username), ?sort=updated|last_run, ?cursor=,
    ?limit=."""
    asked = query(m.ListQuery)
    page = service.list_experiments(
        current_claim(), org, workspace, tag=asked.tag or None, search=asked.search or None,
        cursor=asked.cursor or None, limit=asked.limit, last_run=asked.last_run or None,
        author=asked.author or None, sort=asked.sort or "updated",
        contribution=asked.contribution or None,
    )
    return jsonify({
        "experiments": [serialize(e, with_document=False) for e in page.experiments],
        "next_cursor": page.next_cursor,
    })


@api.get("/experiments/<experiment_id>")
@docs.validate(query=m.DownloadQuery, resp=answers(m.ExperimentOrDocument, 400, 404),
               tags=["experiments"])
def get_experiment(experiment_id: str):
    """One experiment; ?format=yaml|json (or an Accept of YAML) downloads its document."""
    experiment = service.get_experiment(current_claim(), experiment_id)
    if query(m.DownloadQuery).format or bodies.wants_yaml():
        response = bodies.document_response(experiment.document, bodies.wants_yaml())
        extension = "yaml" if bodies.wants_yaml() else "json"
        response.headers["Content-Disposition"] = (
            f'attachment; filename="experiment-{experiment.id}.{extension}"')
    else:
        response = jsonify(serialize(experiment))
    response.headers["Vary"] = "Accept"
    return response


@api.put("/experiments/<experiment_id>")
@docs.validate(query=m.WriteQuery, json=m.ExperimentDocument, tags=["experiments"],
               resp=answers(m.SavedExperiment, 400, 401, 403, 404, 413, 422))
def update_experiment(experiment_id: str):
    """Replace the document: a new version when it changed, the same version when identical."""
    claim = bodies.writer_claim(service.WRITE_SCOPE)
    service.authorize_write(claim, "write", experiment_id=experiment_id)
    document = bodies.read_object("EXPERIMENT_MAX_BYTES", "experiment", yaml_allowed=True)
    saved = service.update_experiment(claim, experiment_id, document,
                                      query(m.WriteQuery).message)
    return jsonify(saved_body(saved))


@api.delete("/experiments/<experiment_id>")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["experiments"])
def delete_experiment(experiment_id: str):
    """Delete an experiment with its versions and executions."""
    service.delete_experiment(signed_in_claim(), experiment_id)
    return Response(status=204)


# Versions ----------------------------------------------------------------------------------


@api.get("/experiments/<experiment_id>/versions")
@docs.validate(query=PageQuery, resp=answers(m.VersionList, 400, 404), tags=["versions"])
def list_versions(experiment_id: str):
    """An experiment's versions a page at a time, newest first: ?cursor=, ?limit=."""
    asked = query(PageQuery)
    page = service.page_versions(current_claim(), experiment_id, asked.cursor or None,
                                 asked.limit)
    return jsonify({"versions": [v.model_dump(mode="json", exclude={"document"})
                                 for v in page.versions],
                    "next_cursor": page.next_cursor})


@api.get("/experiments/<experiment_id>/versions/<int:number>")
@docs.validate(resp=answers(VersionView, 404), tags=["versions"])
def get_version(experiment_id: str, number: int):
    """One version of an experiment, with its document."""
    return jsonify(service.get_version(current_claim(), experiment_id, number)
                   .model_dump(mode="json"))


@api.get("/experiments/<experiment_id>/diff")
@docs.validate(query=m.DiffQuery, resp=answers(m.VersionDiff, 400, 404), tags=["versions"])
def diff_versions(experiment_id: str):
    """What changed between two versions: ?from=n&to=m."""
    asked = query(m.DiffQuery)
    return jsonify(service.diff_versions(current_claim(), experiment_id, asked.from_, asked.to))


# Executions --------------------------------------------------------------------------------


@api.get("/experiments/<experiment_id>/executions")
@docs.validate(query=PageQuery, resp=answers(m.ExecutionList, 400, 404), tags=["executions"])
def list_executions(experiment_id: str):
    """An experiment's executions a page at a time, newest first: ?cursor=, ?limit=."""
    asked = query(PageQuery)
    page = service.page_executions(current_claim(), experiment_id, asked.cursor or None,
                                   asked.limit)
    return jsonify({"executions": [execution_body(e, with_activities=False)
                                   for e in page.executions],
                    "next_cursor": page.next_cursor})


@api.post("/experiments/<experiment_id>/executions")
@docs.validate(json=m.Journal, tags=["executions"],
               resp=answers(ExecutionView, 400, 401, 403, 404, 413, 422, status=(200, 201)))
def publish_execution(experiment_id: str):
    """Publish a journal: 201 for a new execution, 200 with the first one for a repeat."""
    claim = bodies.writer_claim(service.EXECUTIONS_WRITE_SCOPE)
    service.authorize_write(claim, "run", experiment_id=experiment_id)
    journal = bodies.read("EXECUTION_MAX_BYTES", "journal")
    published = service.publish_execution(claim, experiment_id, journal,
                                          request.headers.get("Idempotency-Key"))
    response = jsonify(execution_body(published.execution))
    response.status_code = 201 if published.created else 200
    response.headers["Location"] = f"/api/v1/executions/{published.execution.id}"
    return response


@api.get("/executions/<execution_id>")
@docs.validate(resp=answers(ExecutionView, 404), tags=["executions"])
def get_execution(execution_id: str):
    """One execution's index and activities."""
    return jsonify(execution_body(service.get_execution(current_claim(), execution_id)))


@api.get("/executions/<execution_id>/journal")
@docs.validate(resp=answers(m.Journal, 404), tags=["executions"])
def get_journal(execution_id: str):
    """The journal of an execution, as published."""
    return jsonify(service.get_journal(current_claim(), execution_id))


@api.get("/executions/<execution_id>/junit")
@docs.validate(resp=DocumentAnswers(
    "application/xml", "A JUnit XML document (the Ant format CI servers read)", 403, 404),
    tags=["executions"])
def get_execution_junit(execution_id: str):
    """The execution as JUnit XML for CI: one test suite named after the experiment, a test
    case per steady-state probe (before and after the method) and per method and rollback
    activity; a tolerance not met is a failure, a failed activity an error, one that did not
    run a skip. As its journal, not for those who may see its status only."""
    xml = service.get_execution_junit(current_claim(), execution_id, external_url(""))
    response = Response(xml, content_type="application/xml; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="execution-{execution_id}-junit.xml"')
    return response


@api.get("/executions/<execution_id>/report")
@docs.validate(resp=DocumentAnswers(
    "text/html", "A self-contained HTML page: it loads nothing from anywhere", 403, 404),
    tags=["executions"])
def get_execution_report(execution_id: str):
    """The execution as an HTML report to keep or attach: its outcome, when and how long,
    who published it, its steady states, method and rollbacks (its status only, for those
    who may see no more)."""
    report = service.get_execution_report(current_claim(), execution_id)
    html = render_template("experiment/report.html", report=report,
                           execution=report.execution, outcome_labels=OUTCOME_LABELS,
                           page_url=external_url(reports.execution_path(report)),
                           hub_url=external_url("/"))
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{reports.filename(report, "html")}"')
    response.headers["Content-Security-Policy"] = REPORT_POLICY
    return response


@api.get("/experiments/<experiment_id>/compare")
@docs.validate(query=m.CompareQuery, resp=answers(m.Comparison, 400, 404), tags=["executions"])
def compare_executions(experiment_id: str):
    """What changed between two executions of an experiment: ?a=<execution id>&b=<execution id>."""
    asked = query(m.CompareQuery)
    comparison = service.compare_executions(current_claim(), experiment_id, asked.a, asked.b)
    # Each execution's activities are in the pairs already.
    return jsonify(comparison.model_dump(mode="json", exclude={"a": {"activities"},
                                                               "b": {"activities"}}))


# Search --------------------------------------------------------------------------------------


@api.get("/search")
@docs.validate(query=m.SearchQuery, resp=answers(m.SearchResults, 400), tags=["search"])
def search():
    """People, orgs and workspaces whose names start with ?q=, experiments whose title (or a
    word of it) or a tag does, and runs whose id or experiment's title does, as far as the
    caller may see them."""
    asked = query(m.SearchQuery)
    claim = current_claim()
    names = dashboard.search(claim, asked.q, asked.limit)
    found = service.search(claim, asked.q, asked.limit)
    return jsonify({**names.model_dump(mode="json"), **found.model_dump(mode="json")})


# Trends --------------------------------------------------------------------------------------


@api.get("/orgs/<org>/workspaces/<workspace>/trends")
@docs.validate(resp=answers(Trends, 403, 404), tags=["trends"])
def workspace_trends(org: str, workspace: str):
    """The workspace's last 30 days of runs: runs by UTC day and outcome, each experiment's
    pass rate, the experiments that flipped from passing to failing and those not run for 30
    days, and the resilience score with its formula and each experiment's part in it (404
    for those who may not see its runs)."""
    return jsonify(service.workspace_trends(current_claim(), org, workspace)
                   .model_dump(mode="json"))


@api.get("/orgs/<org>/trends")
@docs.validate(resp=answers(Trends, 403, 404), tags=["trends"])
def org_trends(org: str):
    """The trends of the org's workspaces whose runs the caller may see, as one."""
    return jsonify(service.org_trends(current_claim(), org).model_dump(mode="json"))


@api.get("/trends")
@docs.validate(resp=answers(Trends, 401, 403), tags=["trends"])
def my_trends():
    """The trends of the workspaces the caller holds a role in, as one."""
    return jsonify(service.my_trends(current_claim()).model_dump(mode="json"))
