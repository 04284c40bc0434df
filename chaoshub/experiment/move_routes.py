"""Moving an experiment to another workspace: the API's route, and the experiment page's form."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, request

from chaoshub.core.openapi import Body, answers, body, docs, shown_as
from chaoshub.core.web import signed_in_claim
from chaoshub.experiment import service
from chaoshub.experiment.presenters import experiment_path, serialize
from chaoshub.experiment.schemas import ExperimentView

moves = Blueprint("experiment_moves", __name__)

class ExperimentMove(Body):
    """Where an experiment goes: the names of an org and of one of its workspaces."""

    org: str
    workspace: str


MovedExperiment = shown_as(ExperimentView, "MovedExperiment", drop=("document",),
                           experiment=(dict[str, Any], ...), org=(str, ...),
                           workspace=(str, ...), visibility=(str, ...))


@moves.post("/api/v1/experiments/<experiment_id>/move")
@docs.validate(json=ExperimentMove, tags=["experiments"],
               resp=answers(MovedExperiment, 400, 401, 403, 404, 409, 415, 422))
def move_experiment(experiment_id: str):
    """Move an experiment, its versions and runs: {"org": ..., "workspace": ...}; 200 with the
    experiment and the names of where it now lives."""
    move = body(ExperimentMove)
    moved = service.move_experiment(signed_in_claim(), experiment_id, move.org.strip(),
                                    move.workspace.strip())
    return jsonify({**serialize(moved.experiment), "org": moved.org,
                    "workspace": moved.workspace, "visibility": moved.visibility})


@moves.post("/<org>/<workspace>/experiment/<experiment_id>/move")
def move_from_page(org: str, workspace: str, experiment_id: str):
    """The experiment page's form: move the experiment, then show it where it now lives."""
    claim = signed_in_claim()
    # The experiment must live where the URL says, as for the page the form is on.
    service.get_workspace_experiment(claim, org, workspace, experiment_id)
    target_org, _, target_workspace = request.form.get("destination", "").partition("/")
    moved = service.move_experiment(claim, experiment_id, target_org, target_workspace)
    return redirect(experiment_path(moved.org, moved.workspace, experiment_id), code=303)
