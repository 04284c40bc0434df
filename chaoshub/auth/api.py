"""Auth's JSON API: who am I (dashboard serves the API tokens' routes)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from chaoshub.auth import service
from chaoshub.auth.schemas import Caller
from chaoshub.core.openapi import answers, docs
from chaoshub.core.web import signed_in_claim

api = Blueprint("auth_api", __name__, url_prefix="/api/v1")


@api.get("/me")
@docs.validate(resp=answers(Caller, 401), tags=["tokens"])
def me():
    """Who the caller is: account, credential kind and its scopes."""
    return jsonify(service.describe_caller(signed_in_claim()).model_dump(mode="json"))
