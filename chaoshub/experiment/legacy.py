"""The wire API of the `chaostoolkit-chaoshub` CLI plugin (../shared/contracts/legacy-cli-api.md).

Its clients cannot change: statuses, bodies and headers are the contract's, byte for byte. The
client crashes without `Location` on a 200/201 and reads `content-type` on every error.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from chaoshub.core.errors import Forbidden, NotFound, Unauthorized
from chaoshub.core.web import SESSION_COOKIE, external_url
from chaoshub.experiment import bodies, service
from chaoshub.experiment.presenters import experiment_path

legacy = Blueprint("experiment_legacy", __name__)


@legacy.url_value_preprocessor
def _credentials_first(endpoint, values) -> None:
    # URL preprocessors run before the app's CSRF check: a plugin request with no credentials
    # at all must read 401 (as the contract says), not the 403 of a missing CSRF token.
    if (request.method == "POST" and "Authorization" not in request.headers
            and SESSION_COOKIE not in request.cookies):
        raise Unauthorized("send an API token: Authorization: Bearer <token>")


@legacy.after_request
def _challenge(response):
    # The plugin re-authenticates on either answer: both name the scheme it must use.
    if response.status_code in (401, 403):
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


@legacy.post("/api/<org>/<workspace>/experiment")
def publish_experiment(org: str, workspace: str):
    """Publish an experiment: 201 when new, 200 when its `chaoshub` extension names one here."""
    claim = bodies.writer_claim(service.WRITE_SCOPE)
    try:
        service.authorize_write(claim, "write", org=org, workspace=workspace)
    except Forbidden as exc:
        raise NotFound("no such workspace") from exc  # as publish_experiment says
    document = bodies.read_object("EXPERIMENT_MAX_BYTES", "experiment", yaml_allowed=True)
    saved = service.publish_experiment(claim, org, workspace, document)
    experiment = saved.experiment
    response = _json({"id": experiment.id, "ref": saved.content_hash},
                     201 if saved.created else 200)
    response.headers["Location"] = external_url(
        experiment_path(saved.org, saved.workspace, experiment.id))
    return response


@legacy.post("/api/<org>/<workspace>/experiment/<experiment_id>/execution")
def publish_execution(org: str, workspace: str, experiment_id: str):
    """Publish a journal of an experiment of this workspace: 201, whether new or a repeat."""
    claim = bodies.writer_claim(service.EXECUTIONS_WRITE_SCOPE)
    service.authorize_write(claim, "run", org=org, workspace=workspace,
                            experiment_id=experiment_id)
    journal = bodies.read("EXECUTION_MAX_BYTES", "journal")
    published = service.publish_execution(
        claim, experiment_id, journal, request.headers.get("Idempotency-Key"),
        org=org, workspace=workspace)
    execution_id = published.execution.id
    response = _json({"id": execution_id}, 201)
    response.headers["Location"] = external_url(
        f"{experiment_path(org, workspace, experiment_id)}/execution/{execution_id}")
    return response


def _json(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    return response
