"""Experiment's HTTP face: the JSON API under /api/v1."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from chaoshub.core.errors import BadRequest
from chaoshub.core.web import current_claim, signed_in_claim
from chaoshub.experiment import service
from chaoshub.experiment.schemas import ExperimentView

api = Blueprint("experiment_api", __name__, url_prefix="/api/v1")


@api.post("/orgs/<org>/workspaces/<workspace>/experiments")
def create_experiment(org: str, workspace: str):
    """Add an experiment (a JSON document) to a workspace."""
    document = request.get_json()
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object: the experiment")
    experiment = service.create_experiment(signed_in_claim(), org, workspace, document)
    response = jsonify(_serialize(experiment))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/experiments/{experiment.id}"
    return response


@api.get("/experiments/<experiment_id>")
def get_experiment(experiment_id: str):
    """One experiment, to those who may read its workspace."""
    return jsonify(_serialize(service.get_experiment(current_claim(), experiment_id)))


def _serialize(experiment: ExperimentView) -> dict:
    data = experiment.model_dump(mode="json", exclude={"document"})
    data["experiment"] = experiment.document
    return data
