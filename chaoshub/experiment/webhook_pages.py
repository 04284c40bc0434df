"""The workspace's Notifications page: its webhooks and Slack notifications, the form that adds
one (showing a webhook's secret once), and each one's delivery log with a Redeliver button."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, make_response, redirect, render_template, request

from chaoshub.core import mail
from chaoshub.core.errors import HubError, NotFound, problems_by_field
from chaoshub.core.web import current_claim, signed_in_claim
from chaoshub.experiment import grants, notifications, webhooks

webhook_pages = Blueprint("experiment_webhook_pages", __name__)

PAGE = "/<org>/<workspace>/-/notifications"
HOOK = f"{PAGE}/<webhook_id>"
KINDS = {"webhook": "Webhook (signed JSON)", "slack": "Slack (incoming webhook URL)"}


@webhook_pages.get(PAGE)
def notifications_page(org: str, workspace: str):
    """The workspace's webhooks and the form that adds one (maintainers and owners)."""
    return _page(current_claim(), org, workspace)


@webhook_pages.post(PAGE)
def create_webhook(org: str, workspace: str):
    """The form that adds a webhook: the page again, with its secret shown this once."""
    claim = signed_in_claim()
    form = request.form
    kind = form.get("kind") if form.get("kind") in KINDS else "webhook"
    try:
        made = webhooks.create_webhook(claim, org, workspace, form.get("url", "").strip(),
                                       form.getlist("events"), kind,
                                       form.get("description", ""))
    except HubError as error:
        if error.status >= 500:
            raise
        # A Slack URL typed in is a secret: the page shown again does not hold it.
        kept = {"description": form.get("description", ""), "kind": kind,
                "events": form.getlist("events"),
                "url": form.get("url", "") if kind == "webhook" else ""}
        return _page(claim, org, workspace, error, kept)
    response = _page(claim, org, workspace, created=made)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"  # the secret stays out of caches
    return response


@webhook_pages.post(f"{PAGE}/email")
def create_email_notification(org: str, workspace: str):
    """The form that adds an email notification: to the members named (usernames, separated
    by commas or spaces), or to the members who opted in."""
    claim = signed_in_claim()
    form = request.form
    names = [n for n in form.get("recipients", "").replace(",", " ").split() if n]
    try:
        made = webhooks.create_webhook(claim, org, workspace, "", form.getlist("events"),
                                       "email", form.get("description", ""), names or None)
    except HubError as error:
        if error.status >= 500:
            raise
        kept = {"description": form.get("description", ""), "kind": "email",
                "events": form.getlist("events"), "recipients": form.get("recipients", "")}
        return _page(claim, org, workspace, error, kept)
    response = _page(claim, org, workspace, created=made)
    response.status_code = 201
    return response


@webhook_pages.get(HOOK)
def webhook_page(org: str, workspace: str, webhook_id: str):
    """One webhook and its delivery log, newest first, each attempt's code, time and
    duration, with a Redeliver button."""
    claim = current_claim()
    where, hook = _located(claim, org, workspace, webhook_id)
    log = webhooks.list_deliveries(claim, hook.id, request.args.get("cursor") or None, 50)
    return render_template("experiment/webhook.html", ws=where, hook=hook, log=log,
                           base=_base(where), kinds=KINDS, done=request.args.get("done"))


@webhook_pages.post(f"{HOOK}/deliveries/<delivery_id>/redeliver")
def redeliver(org: str, workspace: str, webhook_id: str, delivery_id: str):
    """The Redeliver button of a delivery."""
    return _act(org, workspace, webhook_id, "redelivered",
                lambda claim, hook: webhooks.redeliver(claim, hook.id, delivery_id))


@webhook_pages.post(f"{HOOK}/test")
def send_test(org: str, workspace: str, webhook_id: str):
    """The button that sends the webhook a ping."""
    return _act(org, workspace, webhook_id, "pinged",
                lambda claim, hook: webhooks.ping(claim, hook.id))


@webhook_pages.post(f"{HOOK}/active")
def set_active(org: str, workspace: str, webhook_id: str):
    """The button that turns a webhook off, or on again."""
    active = request.form.get("active") == "on"
    return _act(org, workspace, webhook_id, "on" if active else "off",
                lambda claim, hook: webhooks.update_webhook(claim, hook.id, active=active))


@webhook_pages.post(f"{HOOK}/delete")
def delete_webhook(org: str, workspace: str, webhook_id: str):
    """The button that deletes a webhook, with its log."""
    claim = signed_in_claim()
    where, hook = _located(claim, org, workspace, webhook_id)
    webhooks.delete_webhook(claim, hook.id)
    return redirect(f"{_base(where)}?deleted=1", code=303)


def _act(org: str, workspace: str, webhook_id: str, done: str, change):
    claim = signed_in_claim()
    where, hook = _located(claim, org, workspace, webhook_id)
    change(claim, hook)
    return redirect(f"{_base(where)}/{hook.id}?done={done}", code=303)


def _located(claim: str, org: str, workspace: str, webhook_id: str):
    """The workspace of the URL and its webhook: one of another workspace is not found here."""
    where = grants.by_name(claim, org, workspace)
    hook = webhooks.get_webhook(claim, webhook_id)
    if hook.workspace_id != where.id:
        raise NotFound("no such webhook in this workspace")
    return where, hook


def _base(where) -> str:
    return f"/{quote(where.org_name, safe='')}/{quote(where.name, safe='')}/-/notifications"


def _page(claim: str, org: str, workspace: str, error: HubError | None = None, form=None,
          created: webhooks.CreatedWebhook | None = None):
    listing = webhooks.list_webhooks(claim, org, workspace, limit=100)
    where = grants.by_name(claim, org, workspace)
    html = render_template(
        "experiment/notifications.html", ws=where, hooks=listing.webhooks, base=_base(where),
        kinds=KINDS, event_types=notifications.EVENT_TYPES, error=error,
        problems=problems_by_field(error.details) if error else {}, form=form or {},
        created=created, deleted=request.args.get("deleted") and not error,
        mail_enabled=mail.enabled())
    return make_response(html, error.status if error else 200)
