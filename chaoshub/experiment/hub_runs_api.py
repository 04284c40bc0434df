"""The API of runs on the hub: start a run of an experiment, list its runs, abort one."""

from __future__ import annotations

from flask import Blueprint, jsonify
from pydantic import BaseModel, Field

from chaoshub.core.openapi import Body, answers, body, docs, query, shown_as
from chaoshub.core.paging import PageQuery
from chaoshub.core.web import credentials_first, current_claim, external_url
from chaoshub.experiment import api_models as m
from chaoshub.experiment import bodies, service
from chaoshub.experiment.presenters import result_body, run_body, run_path
from chaoshub.experiment.runs import (
    ConfigurationValue,
    Dry,
    RollbackStrategy,
    RunResult,
    RunView,
)
from chaoshub.experiment.workers import WorkerView

hub_runs_api = Blueprint("experiment_hub_runs", __name__, url_prefix="/api/v1")
hub_runs_api.url_value_preprocessor(credentials_first)


class NewRun(Body):
    """A run to start on the hub's workers; every field may be left out."""

    version: int | None = Field(None, ge=1, description="The version to run (default latest).")
    dry: Dry | None = Field(None, description="Skip these activities (chaos run --dry).")
    rollback_strategy: RollbackStrategy | None = None
    configuration: dict[str, ConfigurationValue] | None = Field(
        None, max_length=100, description="Configuration values the experiment reads.")
    environment: str | None = Field(
        None, max_length=63, description="The workspace's environment to run in: its values "
                                         "and secrets (protected ones: maintainers only).")


class RunAbort(Body):
    """How to stop a run: with its rollbacks (the default) or without."""

    rollbacks: bool = True


StartedRun = shown_as(m.WaitedRun, "StartedRun", url=(str, ...), page_url=(str, ...))
StartedRun.__doc__ = "A run just queued (or, with ?wait=, ended), and where to follow it."


class RunList(BaseModel):
    """A page of an experiment's runs."""

    runs: list[RunView]
    next_cursor: str | None


@hub_runs_api.post("/experiments/<experiment_id>/runs")
@docs.validate(query=m.WaitQuery, json=NewRun, tags=["runs"],
               resp=answers(StartedRun, 400, 401, 403, 404, 409, 422, status=(201, 202)))
def start_run(experiment_id: str):
    """Start a run of the experiment on the hub's workers: 202 with the queued run; with
    ?wait=N (which needs executions:read too), 201 with its status, outcome and execution once
    it has ended within N seconds, else 202 with the run as it is then."""
    claim = bodies.writer_claim(service.RUNS_EXECUTE_SCOPE)
    asked = query(m.WaitQuery)
    if asked.wait:
        # Checked before the run starts: it is not started for a caller who cannot follow it.
        bodies.writer_claim(service.EXECUTIONS_READ_SCOPE)
    options = body(NewRun)
    run = service.start_run(claim, experiment_id, options.version, options.dry,
                            options.rollback_strategy, options.configuration,
                            options.environment)
    if asked.wait:
        result = service.wait_for_run(claim, run.id, asked.wait)
    else:
        result = RunResult(run=run, ended=False)
    response = jsonify({**result_body(result), "url": external_url(f"/api/v1/runs/{run.id}"),
                        "page_url": external_url(run_path(run))})
    response.status_code = 201 if result.ended else 202
    response.headers["Location"] = f"/api/v1/runs/{run.id}"
    return response


@hub_runs_api.get("/experiments/<experiment_id>/runs")
@docs.validate(query=PageQuery, resp=answers(RunList, 400, 404), tags=["runs"])
def list_runs(experiment_id: str):
    """The experiment's runs, on the hub and from clients, newest first: ?cursor=, ?limit=."""
    asked = query(PageQuery)
    page = service.page_runs(current_claim(), experiment_id, asked.cursor or None, asked.limit)
    return jsonify({"runs": [run_body(r) for r in page.runs], "next_cursor": page.next_cursor})


@hub_runs_api.post("/runs/<run_id>/abort")
@docs.validate(json=RunAbort, tags=["runs"],
               resp=answers(RunView, 400, 401, 403, 404, 409, 422, status=202))
def abort_run(run_id: str):
    """Stop a run: it ends `aborted` within seconds, its rollbacks played unless told not to."""
    claim = bodies.writer_claim(service.RUNS_EXECUTE_SCOPE)
    choice = body(RunAbort)
    response = jsonify(run_body(service.abort_run(claim, run_id, choice.rollbacks)))
    response.status_code = 202
    return response


class WorkerList(BaseModel):
    """The live workers."""

    workers: list[WorkerView]


@hub_runs_api.get("/workers")
@docs.validate(resp=answers(WorkerList, 401), tags=["runs"])
def list_workers():
    """The workers that run experiments, and the Chaos Toolkit extensions each has."""
    return jsonify({"workers": [w.model_dump(mode="json")
                                for w in service.list_workers(current_claim())]})
