"""The API of a workspace's webhooks and Slack notifications, and of their deliveries (answers
carry a signing secret once, in the 201 that makes the webhook, and never again)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from pydantic import Field

from chaoshub.core.openapi import Body, answers, body, docs, json_object, query, validated
from chaoshub.core.paging import PageQuery
from chaoshub.core.web import credentials_first, current_claim, signed_in_claim
from chaoshub.experiment import webhooks
from chaoshub.experiment.webhooks import (
    CreatedWebhook,
    DeliveryPage,
    DeliveryView,
    EventType,
    Kind,
    WebhookPage,
    WebhookView,
)

webhooks_api = Blueprint("experiment_webhooks", __name__, url_prefix="/api/v1")
webhooks_api.url_value_preprocessor(credentials_first)

BASE = "/orgs/<org>/workspaces/<workspace>/webhooks"


class NewWebhook(Body):
    """A webhook: where it goes, what it hears of, and its kind ("slack": a Slack incoming
    webhook URL, a formatted message; "webhook": a signed JSON body; "email": a formatted
    mail to `recipients`, or with none to the members who opted in, no URL)."""

    url: str = ""
    events: list[EventType]
    kind: Kind = "webhook"
    description: str = ""
    recipients: list[str] | None = Field(None, description="email: the members' usernames")


class WebhookChange(Body):
    """What to change of a webhook; what is left out stays."""

    url: str | None = None
    events: list[EventType] | None = None
    active: bool | None = None
    description: str | None = None
    recipients: list[str] | None = Field(None, description="email: the members' usernames")


class NoOptions(Body):
    """Nothing to say: the body may be left out, or be an empty JSON object."""


def no_options() -> None:
    """Check a body sent where none is needed: an empty JSON object, or a 400 (422)."""
    if request.get_data(cache=True):
        validated(NoOptions, json_object())


@webhooks_api.get(BASE)
@docs.validate(query=PageQuery, resp=answers(WebhookPage, 400, 401, 403, 404),
               tags=["webhooks"])
def list_webhooks(org: str, workspace: str):
    """The workspace's webhooks (maintainers and owners): ?cursor=, ?limit=."""
    asked = query(PageQuery)
    page = webhooks.list_webhooks(current_claim(), org, workspace, asked.cursor or None,
                                  asked.limit)
    return jsonify(page.model_dump(mode="json"))


@webhooks_api.post(BASE)
@docs.validate(json=NewWebhook, tags=["webhooks"],
               resp=answers(CreatedWebhook, 400, 401, 403, 404, 409, 415, 422, status=201))
def create_webhook(org: str, workspace: str):
    """Add a webhook; 201 with it and its signing secret (`whsec_...`), shown this once."""
    new = body(NewWebhook)
    made = webhooks.create_webhook(signed_in_claim(), org, workspace, new.url,
                                   list(new.events), new.kind, new.description,
                                   new.recipients)
    response = jsonify(made.model_dump(mode="json"))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/webhooks/{made.id}"
    response.headers["Cache-Control"] = "no-store"
    return response


@webhooks_api.get("/webhooks/<webhook_id>")
@docs.validate(resp=answers(WebhookView, 401, 403, 404), tags=["webhooks"])
def get_webhook(webhook_id: str):
    """One webhook (never its secret)."""
    return jsonify(webhooks.get_webhook(current_claim(), webhook_id).model_dump(mode="json"))


@webhooks_api.patch("/webhooks/<webhook_id>")
@docs.validate(json=WebhookChange, tags=["webhooks"],
               resp=answers(WebhookView, 400, 401, 403, 404, 415, 422))
def update_webhook(webhook_id: str):
    """Change a webhook's URL, events or description, or turn it off (`active`: false)."""
    change = body(WebhookChange)
    view = webhooks.update_webhook(signed_in_claim(), webhook_id, change.url,
                                   None if change.events is None else list(change.events),
                                   change.active, change.description, change.recipients)
    return jsonify(view.model_dump(mode="json"))


@webhooks_api.delete("/webhooks/<webhook_id>")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["webhooks"])
def delete_webhook(webhook_id: str):
    """Delete a webhook with its deliveries."""
    webhooks.delete_webhook(signed_in_claim(), webhook_id)
    return Response(status=204)


@webhooks_api.get("/webhooks/<webhook_id>/deliveries")
@docs.validate(query=PageQuery, resp=answers(DeliveryPage, 400, 401, 403, 404),
               tags=["webhooks"])
def list_deliveries(webhook_id: str):
    """The webhook's deliveries, newest first, each with every attempt's answer code (or
    error), time and duration: ?cursor=, ?limit=."""
    asked = query(PageQuery)
    page = webhooks.list_deliveries(current_claim(), webhook_id, asked.cursor or None,
                                    asked.limit)
    return jsonify(page.model_dump(mode="json"))


@webhooks_api.post("/webhooks/<webhook_id>/deliveries/<delivery_id>/redeliver")
@docs.validate(resp=answers(DeliveryView, 401, 403, 404, 409, status=202), tags=["webhooks"])
def redeliver(webhook_id: str, delivery_id: str):
    """Send a delivery again (a worker sends it at once, with a fresh retry schedule)."""
    no_options()
    view = webhooks.redeliver(signed_in_claim(), webhook_id, delivery_id)
    return jsonify(view.model_dump(mode="json")), 202


@webhooks_api.post("/webhooks/<webhook_id>/test")
@docs.validate(resp=answers(DeliveryView, 401, 403, 404, 409, status=202), tags=["webhooks"])
def test_webhook(webhook_id: str):
    """Send the webhook a `ping` notification (a worker sends it)."""
    no_options()
    view = webhooks.ping(signed_in_claim(), webhook_id)
    return jsonify(view.model_dump(mode="json")), 202
