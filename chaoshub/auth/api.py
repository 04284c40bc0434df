"""Auth's JSON API: who am I, and API tokens."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from chaoshub.auth import api_models as m
from chaoshub.auth import service
from chaoshub.auth.schemas import Caller
from chaoshub.core.errors import BadRequest
from chaoshub.core.openapi import answers, docs
from chaoshub.core.web import signed_in_claim

api = Blueprint("auth_api", __name__, url_prefix="/api/v1")


@api.get("/me")
@docs.validate(resp=answers(Caller, 401), tags=["tokens"])
def me():
    """Who the caller is: account, credential kind and its scopes."""
    return jsonify(service.describe_caller(signed_in_claim()).model_dump(mode="json"))


@api.post("/tokens")
@docs.validate(json=m.TokenRequest, resp=answers(m.NewToken, 400, 401, 403, status=201),
               tags=["tokens"])
def create_token():
    """Create an API token; the answer carries its secret, this once."""
    body = request.get_json()
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise BadRequest("scopes must be a list of scope names")
    days = body.get("expires_in_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool)):
        raise BadRequest("expires_in_days must be a whole number of days")
    workspace = body.get("workspace")
    if workspace is not None and not isinstance(workspace, str):
        raise BadRequest("workspace must be written as org/workspace")
    name = body.get("name")
    new = service.create_token(signed_in_claim(), name if isinstance(name, str) else "", scopes,
                               days, workspace)
    response = jsonify({"secret": new.secret, **new.token.model_dump(mode="json")})
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/tokens/{new.token.id}"
    response.headers["Cache-Control"] = "no-store"
    return response


@api.get("/tokens")
@docs.validate(resp=answers(m.TokenList, 401, 403), tags=["tokens"])
def list_tokens():
    """The caller's tokens (never their secrets)."""
    tokens = service.list_tokens(signed_in_claim())
    return jsonify({"tokens": [t.model_dump(mode="json") for t in tokens]})


@api.delete("/tokens/<token_id>")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["tokens"])
def revoke_token(token_id: str):
    """Revoke a token at once."""
    service.revoke_token(signed_in_claim(), token_id)
    return "", 204
