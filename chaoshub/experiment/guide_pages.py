"""The first-run guide's file: a first experiment to download and run with `chaos run`."""

from __future__ import annotations

import json

from flask import Blueprint, make_response

from chaoshub.core.web import current_claim, external_url
from chaoshub.experiment import service
from chaoshub.experiment.guide import FIRST_RUN_FILE, first_experiment

guide_pages = Blueprint("experiment_guide", __name__)


@guide_pages.get(f"/<org>/<workspace>/experiment/-/{FIRST_RUN_FILE}")
def first_run_file(org: str, workspace: str):
    """The first experiment, as a file to run with `chaos run` (for those who may write here)."""
    service.authorize_write(current_claim(), "write", org=org, workspace=workspace)
    response = make_response(json.dumps(first_experiment(external_url("")), indent=2) + "\n")
    response.mimetype = "application/json"
    response.headers["Content-Disposition"] = f'attachment; filename="{FIRST_RUN_FILE}"'
    return response
