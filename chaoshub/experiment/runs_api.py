"""Runs' HTTP face: what the hub's Chaos Toolkit control speaks while `chaos run` goes on."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from chaoshub.core.openapi import answers, docs, query, validated
from chaoshub.core.web import credentials_first, current_claim, external_url
from chaoshub.experiment import api_models as m
from chaoshub.experiment import bodies, service
from chaoshub.experiment.presenters import execution_body, result_body, run_body
from chaoshub.experiment.runs import EventsRecorded, RunState

runs_api = Blueprint("experiment_runs", __name__, url_prefix="/api/v1/runs")


runs_api.url_value_preprocessor(credentials_first)


@runs_api.after_request
def _challenge(response):
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


@runs_api.post("")
@docs.validate(json=m.RunOpening, tags=["runs"],
               resp=answers(m.RunOpened, 400, 401, 403, 404, 409, 413, 422, status=201))
def create_run():
    """Open a run: {"org", "workspace", "experiment", "experiment_id"?, "node"?} -> 201; sent
    again with the same Idempotency-Key header (a retry), the same run."""
    # The workspace is named in the body: only the scope can be checked before reading it.
    claim = bodies.writer_claim(service.EXECUTIONS_WRITE_SCOPE)
    opening = validated(m.RunOpening, bodies.read_object("EXPERIMENT_MAX_BYTES", "run"))
    run = service.create_run(claim, opening.org, opening.workspace, opening.experiment,
                             opening.experiment_id, opening.node,
                             request.headers.get("Idempotency-Key"))
    response = jsonify({"id": run.id, "experiment_id": run.experiment_id,
                        "execution_url": external_url(f"/api/v1/runs/{run.id}")})
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/runs/{run.id}"
    return response


@runs_api.post("/<run_id>/events")
@docs.validate(json=m.RunEvents, tags=["runs"],
               resp=answers(EventsRecorded, 400, 401, 403, 404, 409, 413, 422))
def record_events(run_id: str):
    """Keep one event or a list of them, each with its increasing `seq`; resending is safe."""
    claim = bodies.writer_claim(service.EXECUTIONS_WRITE_SCOPE)
    service.authorize_write(claim, "run", run_id=run_id)
    body = bodies.read("EXECUTION_MAX_BYTES", "events")
    events = body if isinstance(body, list) else [body]
    recorded = service.record_run_events(claim, run_id, events)
    return jsonify(recorded.model_dump(mode="json"))


@runs_api.put("/<run_id>/journal")
@docs.validate(json=m.Journal, resp=answers(m.FinishedRun, 400, 401, 403, 404, 409, 413, 422,
                                                   status=(200, 201)), tags=["runs"])
def finish_run(run_id: str):
    """The run's final journal: 201 when it became an execution now, 200 for a repeat."""
    claim = bodies.writer_claim(service.EXECUTIONS_WRITE_SCOPE)
    service.authorize_write(claim, "run", run_id=run_id)
    journal = bodies.read("EXECUTION_MAX_BYTES", "journal")
    finished = service.finish_run(claim, run_id, journal)
    response = jsonify({**run_body(finished.run),
                        "execution": execution_body(finished.execution, with_activities=False)})
    response.status_code = 201 if finished.created else 200
    response.headers["Location"] = f"/api/v1/executions/{finished.execution.id}"
    return response


@runs_api.get("/<run_id>")
@docs.validate(query=m.WaitQuery, resp=answers(m.WaitedRun, 400, 403, 404, status=(200, 202)),
               tags=["runs"])
def get_run(run_id: str):
    """A run: its status, its events so far, and its execution (status, outcome, links to its
    JUnit XML and report) once it has ended. With ?wait=N, answered once it has ended (200) or
    after N seconds (202 with the run as it is): a long poll."""
    seconds = query(m.WaitQuery).wait
    if not seconds:
        return jsonify(result_body(service.wait_for_run(current_claim(), run_id, 0)))
    result = service.wait_for_run(current_claim(), run_id, seconds)
    response = jsonify(result_body(result))
    response.status_code = 200 if result.ended else 202
    return response


@runs_api.get("/<run_id>/state")
@docs.validate(resp=answers(RunState, 404), tags=["runs"])
def get_run_state(run_id: str):
    """What the hub wants of the run: {"desired": "run"}."""
    return jsonify(service.get_run_state(current_claim(), run_id).model_dump(mode="json"))
