"""Auth's JSON API: who am I, and my email address (dashboard serves the API tokens' routes)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from pydantic import Field

from chaoshub.auth import service
from chaoshub.auth.schemas import Caller, EmailAddress
from chaoshub.core.openapi import Body, answers, body, docs
from chaoshub.core.web import SESSION_COOKIE, external_url, signed_in_claim

api = Blueprint("auth_api", __name__, url_prefix="/api/v1")


class EmailRequest(Body):
    """The account's new email address ("" removes it), and whether it wants its workspaces'
    notifications by mail; what is left out stays. Changing or removing the address needs
    the account's current password (an account without one: a sign-in within 10 minutes)."""

    email: str | None = Field(None, max_length=320, description="an address, or \"\" to remove it")
    current_password: str | None = Field(
        None, max_length=1024, description="the account's current password, needed to change "
        "or remove the address (not for `notifications` alone)")
    notifications: bool | None = None


@api.get("/me")
@docs.validate(resp=answers(Caller, 401), tags=["tokens"])
def me():
    """Who the caller is: account, credential kind and its scopes."""
    return jsonify(service.describe_caller(signed_in_claim()).model_dump(mode="json"))


@api.get("/me/email")
@docs.validate(resp=answers(EmailAddress, 401, 403), tags=["account"])
def get_email():
    """The caller's own email address and whether it is verified (a session only)."""
    found = service.email_address_of_session(signed_in_claim())
    return jsonify(found.model_dump(mode="json"))


@api.put("/me/email")
@docs.validate(json=EmailRequest,
               resp=answers(EmailAddress, 400, 401, 403, 409, 415, 422, 429, status=(200, 202)),
               tags=["account"])
def put_email():
    """Set the caller's email address (a session only): unverified until the link mailed to it
    is followed while signed in (202); "" removes it (200). A change needs `current_password`
    (422 when missing or wrong, 429 past 10 wrong ones in 15 minutes); an account without a
    password needs a sign-in within 10 minutes instead (403: sign in again). The verified
    address it replaces is told by mail. `notifications`: mail me my workspaces'
    notifications (to the verified address)."""
    asked = body(EmailRequest)
    claim = signed_in_claim()
    found = service.email_address_of_session(claim)
    sent = asked.email is not None
    if sent:
        # First: a refused change leaves the opt-in as it was too.
        found = service.set_email(claim, asked.email, external_url(""),
                                  current_password=asked.current_password,
                                  session_token=request.cookies.get(SESSION_COOKIE),
                                  client_ip=request.remote_addr or "")
    if asked.notifications is not None:
        found = service.set_email_notifications(claim, asked.notifications)
    response = jsonify(found.model_dump(mode="json"))
    response.status_code = 202 if sent and found.email and not found.verified else 200
    return response
