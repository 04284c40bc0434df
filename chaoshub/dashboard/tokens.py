"""API tokens, their page (on `pages`) and API: dashboard resolves the workspace a token is kept
to, auth makes the token."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, make_response, redirect, render_template, request

from chaoshub.auth import service as auth
from chaoshub.core import client_setup
from chaoshub.core.claims import verify
from chaoshub.core.errors import (
    Forbidden,
    NotFound,
    RateLimited,
    ValidationFailed,
    problems_by_field,
)
from chaoshub.core.openapi import answers, body, docs, query
from chaoshub.core.paging import PageQuery
from chaoshub.core.web import current_claim, external_url, signed_in_claim
from chaoshub.dashboard import api_models as m
from chaoshub.dashboard import permissions, service
from chaoshub.dashboard.page_views import pages

api = Blueprint("dashboard_tokens_api", __name__, url_prefix="/api/v1")

# The purposes the form offers, each one of auth's presets, in the order shown; the first is the
# form's default: a newcomer's first token reports runs from the CLI.
PURPOSES = {
    "cli": "Report runs from the CLI",
    "read-only": "Read only",
    "ci": "Run from CI",
}
CUSTOM = "custom"  # the boxes as ticked, no preset
# What each scope lets a token do, beside its box.
SCOPE_HELP = {
    "experiments:read": "read experiments and their versions (chaos run reads them from the hub)",
    "experiments:write": "publish new experiments and versions",
    "executions:read": "read runs, their journals and timelines",
    "executions:write": "report runs: journals and live events from chaos run",
    "runs:execute": "start runs on the hub, use its environments and the kill switch",
    "orgs:read": "list your orgs, their workspaces, members and activity",
    "audit:read": "read the audit logs of the orgs you own (sign-ins and token addresses)",
}


def token_workspace(claim: str, workspace: str | None) -> tuple[str | None, str | None]:
    """The id and "org/name" label of the workspace a new token is to be kept to, if any."""
    if not workspace:
        return None, None
    if not permissions.is_session(verify(claim)):
        # Auth refuses tokens the making of tokens: say that, before anything of the workspace.
        raise Forbidden("this needs a signed-in session, not an API token")
    org, _, name = workspace.partition("/")
    problem = "write it as org/workspace"
    if org and name:
        try:
            ref = service.authorize(claim, org, name, "read")
        except (NotFound, Forbidden):
            problem = "no such workspace"
        else:
            return ref.id, f"{ref.org_name}/{ref.name}"
    raise ValidationFailed("the token cannot be created",
                           [{"pointer": "/workspace", "message": problem}])


# API ---------------------------------------------------------------------------------------


@api.post("/tokens")
@docs.validate(json=m.TokenRequest, resp=answers(m.NewToken, 400, 401, 403, 415, 422, 429,
                                                 status=201), tags=["tokens"])
def create_token():
    """Create an API token; the answer carries its secret, this once."""
    asked = body(m.TokenRequest)
    claim = signed_in_claim()
    new = auth.create_token(claim, asked.name, asked.scopes, asked.expires_in_days,
                            *token_workspace(claim, asked.workspace),
                            current_password=asked.current_password)
    response = jsonify({"secret": new.secret, **new.token.model_dump(mode="json")})
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/tokens/{new.token.id}"
    response.headers["Cache-Control"] = "no-store"
    return response


@api.get("/tokens")
@docs.validate(query=PageQuery, resp=answers(m.TokenList, 400, 401, 403), tags=["tokens"])
def list_tokens():
    """The caller's tokens (never their secrets), newest first: ?cursor=, ?limit=."""
    asked = query(PageQuery)
    page = auth.page_tokens(signed_in_claim(), asked.cursor or None, asked.limit)
    return jsonify(page.model_dump(mode="json"))


@api.delete("/tokens/<token_id>")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["tokens"])
def revoke_token(token_id: str):
    """Revoke a token at once."""
    auth.revoke_token(signed_in_claim(), token_id)
    return "", 204


# Page --------------------------------------------------------------------------------------


@pages.get("/settings/tokens")
def tokens_page():
    """The API tokens of the account, and a form to make one."""
    claim = current_claim()
    if verify(claim).anonymous:
        return redirect("/signin?next=/settings/tokens")
    return _tokens(claim)


@pages.post("/settings/tokens")
def create_token_from_form():
    """Make a token from the form; its secret is shown on the answer page only."""
    claim = current_claim()  # a visitor's post was refused before it came here
    form = request.form
    try:
        days = int(form.get("expires_in_days") or 0) or None
    except ValueError:
        days = 0
    try:
        new = auth.create_token(claim, form.get("name", ""), chosen_scopes(form), days,
                                *token_workspace(claim, form.get("workspace", "").strip()),
                                current_password=form.get("current_password", ""))
    except ValidationFailed as error:
        problems = problems_by_field(error.details)
        return _tokens(claim, problems=problems, form=form, status=422,
                       guide_place=form.get("guide", ""))
    except (Forbidden, RateLimited) as error:
        # A session too old to mint a token, with no password to prove it is theirs: signing
        # in again does; or too many wrong passwords.
        response = _tokens(claim, problems={"current_password": error.message}, form=form,
                           status=error.status, guide_place=form.get("guide", ""))
        if isinstance(error, RateLimited):
            response.headers["Retry-After"] = str(error.retry_after)
        return response
    response = _tokens(claim, new=new, status=201, guide=_guide(form.get("guide", "")))
    response.headers["Cache-Control"] = "no-store"
    return response


@pages.post("/settings/tokens/<token_id>/revoke")
def revoke_token_from_form(token_id: str):
    """Revoke a token from the list."""
    auth.revoke_token(current_claim(), token_id)
    return redirect("/settings/tokens?revoked=1", code=303)


def chosen_scopes(form) -> list[str]:
    """The scopes a submitted form asks for: a purpose's preset (auth expands it), whatever the
    boxes say, or the ticked boxes when the purpose is custom."""
    # Without JavaScript the boxes do not follow the purpose chosen: the purpose wins, as the
    # page shows it would with JavaScript (ticking a box there switches to custom).
    purpose = form.get("preset", CUSTOM)
    if purpose == CUSTOM:
        return form.getlist("scopes")
    if purpose not in PURPOSES:
        raise ValidationFailed("the token cannot be created", [
            {"pointer": "/preset", "message": "choose one of the purposes, or custom"}])
    return [purpose]


def _guide(place: str) -> dict | None:
    """The next step of a workspace's first-run guide (which made this token): the command
    that logs the CLI in to `place` ("org/workspace")."""
    org, _, workspace = place.partition("/")
    if not org or not workspace:
        return None
    return {"org": org, "workspace": workspace, "install": client_setup.INSTALL,
            "login": client_setup.login_command(external_url(""), org, workspace)}


def _proof_asked(claim: str) -> str | None:
    """What making a token asks of this session besides the form: "password", "sign_in" (an
    account without one), or None when it signed in recently (the claim says when)."""
    started = verify(claim).auth_time
    if started and started >= time.time() - auth.TOKEN_SIGN_IN.total_seconds():
        return None
    return "password" if auth.get_account(claim).has_password else "sign_in"


def _tokens(claim: str, new=None, problems=None, form=None, status: int = 200,
            guide: dict | None = None, guide_place: str = ""):
    purpose = form.get("preset", CUSTOM) if form else next(iter(PURPOSES))
    if purpose in PURPOSES:
        chosen = auth.SCOPE_PRESETS[purpose]
    else:
        chosen = form.getlist("scopes") if form else ()
    html = render_template(
        "dashboard/tokens.html", tokens=auth.list_tokens(claim), new=new,
        problems=problems or {}, form=form or {}, scopes=auth.SCOPES, help=SCOPE_HELP,
        purposes={key: (label, auth.SCOPE_PRESETS[key]) for key, label in PURPOSES.items()},
        purpose=purpose, revoked=request.args.get("revoked"), chosen=chosen, guide=guide,
        proof=_proof_asked(claim), guide_place=guide_place,
    )
    return make_response(html, status)
