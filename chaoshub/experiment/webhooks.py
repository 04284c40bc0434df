"""A workspace's webhooks and Slack notifications: made, listed, changed and deleted by those
who may manage them (the grant's `manage_webhooks`: maintainers and owners), with the log of
their deliveries.

A webhook's signing secret is made here, shown once in the answer that makes it, and kept
sealed (secret_box.py); a Slack URL is a secret too, shown afterwards cut to its host. Neither
goes into any other answer, log line, feed or audit entry.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from chaoshub.auth import service as auth
from chaoshub.core import claims, mail, paging
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    problem,
)
from chaoshub.core.models import new_id, utcnow
from chaoshub.core.schemas import Frozen
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.service import WorkspaceGrant
from chaoshub.experiment import grants, notifications, secret_box, webhook_targets
from chaoshub.experiment.models import Webhook, WebhookAttempt, WebhookDelivery
from chaoshub.experiment.webhook_delivery import secret_context
from chaoshub.experiment.writes import ExperimentWrite, write

SERVICE = "experiment"
SCOPE = "runs:execute"  # what an API token needs to manage webhooks (as environments)
MANAGE = "manage_webhooks"
LISTING = "webhooks"
DELIVERIES = "webhook deliveries"
MAX_WEBHOOKS = 20  # per workspace
SECRET_BYTES = 32
SLACK_HOST = "hooks.slack.com"
Kind = Literal["webhook", "slack", "email"]
MAX_RECIPIENTS = 50  # members an email notification names
EventType = Literal[
    "run.started", "run.finished", "run.deviated", "run.failed", "run.aborted",
    "run.interrupted", "run.refused", "schedule.skipped", "killswitch.engaged",
    "killswitch.released", "experiment.changed",
]


class WebhookView(Frozen):
    """A webhook as answers show it: never its secret, a Slack URL cut to its host."""

    id: str
    workspace_id: str
    kind: Kind
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: datetime
    updated_at: datetime
    # An email notification's chosen members (usernames); None: the members who opted in.
    recipients: list[str] | None = None


class CreatedWebhook(WebhookView):
    """A webhook just made, with its signing secret: the only answer that shows it."""

    secret: str | None = None


class WebhookPage(Frozen):
    """A page of a workspace's webhooks, oldest first, and the next page's cursor."""

    webhooks: list[WebhookView]
    next_cursor: str | None


class AttemptView(Frozen):
    """One attempt at a delivery: the answer's code (None: no answer, see `error`)."""

    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    error: str
    response_excerpt: str


class DeliveryView(Frozen):
    """A notification owed to a webhook, and every attempt at it, oldest first."""

    id: str
    webhook_id: str
    message_id: str
    type: str
    status: str
    attempts: list[AttemptView]
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveryPage(Frozen):
    """A page of a webhook's deliveries, newest first, and the next page's cursor."""

    deliveries: list[DeliveryView]
    next_cursor: str | None


# Reading --------------------------------------------------------------------------------------


def list_webhooks(claim: str, org: str, workspace: str, cursor: str | None = None,
                  limit: int | str | None = None) -> WebhookPage:
    """A page of the workspace's webhooks, for those who manage them."""
    _, where = _manager_by_name(claim, org, workspace)
    size = paging.page_size(limit)
    with transaction(SERVICE) as session:
        rows = list(session.scalars(select(Webhook).where(Webhook.workspace_id == where.id)))
        page, next_cursor = paging.page_of(rows, lambda r: [r.created_at.isoformat(), r.id],
                                           cursor, LISTING, [where.id], size)
        return WebhookPage(webhooks=[view(r) for r in page], next_cursor=next_cursor)


def get_webhook(claim: str, webhook_id: str) -> WebhookView:
    """One webhook, for those who manage its workspace's webhooks."""
    _, _, row = _managed(claim, webhook_id)
    return view(row)


def may_manage(claim: str, org: str, workspace: str) -> bool:
    """True when the caller may manage the workspace's webhooks."""
    return grants.by_name(claim, org, workspace).allows(MANAGE)


def list_deliveries(claim: str, webhook_id: str, cursor: str | None = None,
                    limit: int | str | None = None) -> DeliveryPage:
    """A page of the webhook's deliveries, newest first, each with its attempts."""
    _, _, hook = _managed(claim, webhook_id)
    with transaction(SERVICE) as session:
        rows, next_cursor = paging.newest_first(
            session, select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id),
            WebhookDelivery.created_at, WebhookDelivery.id, cursor, DELIVERIES, [hook.id], limit)
        return DeliveryPage(deliveries=_delivery_views(session, rows), next_cursor=next_cursor)


# Writing --------------------------------------------------------------------------------------


def create_webhook(claim: str, org: str, workspace: str, url: str, events: list[str],
                   kind: Kind = "webhook", description: str = "",
                   recipients: list[str] | None = None) -> CreatedWebhook:
    """Add a webhook (or a Slack or email notification) to the workspace; the answer shows
    its signing secret, the one time it is shown. An email notification goes to the members
    named in `recipients` (usernames), or to the members who opted in."""
    user, where = _manager_by_name(claim, org, workspace)
    if kind == "email":
        _mail_on()
        chosen, found = _recipients(claim, where, recipients)
    else:
        chosen, found = None, _url_problems(url, kind)
    found += _event_problems(events) + _description_problems(description)
    if found:
        raise ValidationFailed("the webhook is not valid", found)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    with write(user) as work:
        session = work.session
        count = session.scalar(select(func.count()).select_from(Webhook).where(
            Webhook.workspace_id == where.id))
        if count >= MAX_WEBHOOKS:
            raise Conflict(f"a workspace holds at most {MAX_WEBHOOKS} webhooks")
        now = utcnow()
        row = Webhook(id=new_id(), workspace_id=where.id, org_id=where.org_id,
                      org_name=where.org_name, workspace_name=where.name, kind=kind,
                      events=_unique(events), description=description.strip(), active=True,
                      created_by=user.sub, created_at=now, updated_at=now)
        if kind == "email":
            _set_recipients(row, chosen)
        else:
            _set_url(row, url)
        if kind == "webhook":
            row.secret_sealed = secret_box.seal(secret, secret_context(row.id, "secret"))
        session.add(row)
        session.flush()
        _tell(work, user, where, "webhook.created", f"added a {_noun(row)} to", row)
        shown = view(row)
    return CreatedWebhook(**shown.model_dump(), secret=secret if kind == "webhook" else None)


def update_webhook(claim: str, webhook_id: str, url: str | None = None,
                   events: list[str] | None = None, active: bool | None = None,
                   description: str | None = None,
                   recipients: list[str] | None = None) -> WebhookView:
    """Change a webhook's URL (an email notification's recipients), events, description, or
    turn it off and on."""
    user, where, hook = _managed(claim, webhook_id)
    found = []
    chosen = None
    if hook.kind == "email":
        if url is not None:
            found.append(problem("url", "an email notification has no URL: name its "
                                        "recipients"))
        if recipients is not None:
            chosen, more = _recipients(claim, where, recipients)
            found += more
    elif recipients is not None:
        found.append(problem("recipients", "only an email notification has recipients"))
    if url is not None and hook.kind != "email":
        found += _url_problems(url, hook.kind)
    if events is not None:
        found += _event_problems(events)
    found += _description_problems(description or "")
    if found:
        raise ValidationFailed("the change is not valid", found)
    with write(user) as work:
        row = _row(work.session, hook.id, lock=True)
        if url is not None and row.kind != "email":
            _set_url(row, url)
        if recipients is not None and row.kind == "email":
            _set_recipients(row, chosen)
        if events is not None:
            row.events = _unique(events)
        if active is not None:
            row.active = active
        if description is not None:
            row.description = description.strip()
        # The names its links are made of, as they are now.
        row.org_name, row.workspace_name = where.org_name, where.name
        row.updated_at = utcnow()
        work.session.flush()
        _tell(work, user, where, "webhook.changed", f"changed a {_noun(row)} of", row)
        return view(row)


def delete_webhook(claim: str, webhook_id: str) -> None:
    """Delete a webhook with its deliveries and their log."""
    user, where, hook = _managed(claim, webhook_id)
    with write(user) as work:
        row = _row(work.session, hook.id, lock=True)
        _delete_deliveries(work.session, [row.id])
        work.session.delete(row)
        _tell(work, user, where, "webhook.deleted", f"deleted a {_noun(row)} of", row)


def redeliver(claim: str, webhook_id: str, delivery_id: str) -> DeliveryView:
    """Send a delivery again, now, with a fresh retry schedule."""
    _, _, hook = _managed(claim, webhook_id)
    _sending_to(hook)
    if not isinstance(delivery_id, str) or len(delivery_id) > 36:
        raise NotFound("no such delivery")
    with transaction(SERVICE) as session:
        row = session.scalar(select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.webhook_id == hook.id)
            .with_for_update())
        if row is None:
            raise NotFound("no such delivery")
        row.status, row.retries, row.next_attempt_at = "pending", 0, utcnow()
        session.flush()
        return _delivery_views(session, [row])[0]


def ping(claim: str, webhook_id: str) -> DeliveryView:
    """Owe the webhook a `ping` notification, to see that it is heard; the workers send it."""
    _, where, hook = _managed(claim, webhook_id)
    _sending_to(hook)
    now = utcnow()
    with transaction(SERVICE) as session:
        delivery_id = new_id()
        session.execute(insert(WebhookDelivery.__table__).values(
            id=delivery_id, webhook_id=hook.id, message_id=f"msg_{new_id().replace('-', '')}",
            type="ping", payload={"workspace_id": where.id, "webhook_id": hook.id},
            occurred_at=now, status="pending", attempts=0, retries=0, next_attempt_at=now,
            lease_until=None, created_at=now, delivered_at=None))
        row = session.get(WebhookDelivery, delivery_id)
        return _delivery_views(session, [row])[0]


def delete_workspaces(session: Session, workspace_ids: list[str]) -> None:
    """Delete the webhooks of workspaces that are gone, in the caller's session."""
    ids = list(session.scalars(select(Webhook.id).where(
        Webhook.workspace_id.in_(workspace_ids))))
    if ids:
        _delete_deliveries(session, ids)
        session.execute(delete(Webhook).where(Webhook.id.in_(ids)))


# Helpers --------------------------------------------------------------------------------------


def view(row: Webhook) -> WebhookView:
    """What answers show of a webhook."""
    return WebhookView(id=row.id, workspace_id=row.workspace_id, kind=row.kind, url=row.url,
                       events=list(row.events or []), description=row.description,
                       active=row.active, created_at=row.created_at, updated_at=row.updated_at,
                       recipients=[r["username"] for r in row.recipients]
                       if row.recipients else None)


def _set_url(row: Webhook, url: str) -> None:
    if row.kind == "slack":
        # The URL is the Slack webhook's credential: kept sealed, shown as its host only.
        row.url_sealed = secret_box.seal(url, secret_context(row.id, "url"))
        parts = urlsplit(url)
        row.url = f"{parts.scheme}://{parts.hostname}/…"
    else:
        row.url = url


def _set_recipients(row: Webhook, chosen: list[dict[str, str]] | None) -> None:
    # What answers show of an email notification's target, in the place of a URL.
    row.recipients = chosen or None
    row.url = ("email: " + ", ".join(r["username"] for r in chosen) if chosen
               else "email: the members who opted in")[:2000]


def _mail_on() -> None:
    if not mail.enabled():
        raise Conflict("this hub sends no mail (no SMTP server is set up): add a webhook or "
                       "a Slack notification instead")


def _recipients(claim: str, where: WorkspaceGrant, names: Any
                ) -> tuple[list[dict[str, str]] | None, list[dict[str, str]]]:
    """The members `names` (usernames) chooses, and the problems with it; none chosen: the
    members who opted in."""
    if names is None or names == []:
        return None, []
    if not isinstance(names, list) or len(names) > MAX_RECIPIENTS:
        return None, [problem("recipients", f"up to {MAX_RECIPIENTS} usernames")]
    members = set(dashboard.workspace_member_ids(where.id))
    chosen: list[dict[str, str]] = []
    found = []
    for index, name in enumerate(names):
        try:
            account = auth.find_account(claim, name) if isinstance(name, str) else None
        except NotFound:
            account = None
        if account is None or account.id not in members:
            found.append(problem(("recipients", index), "not a member of this workspace"))
        elif account.id not in {c["id"] for c in chosen}:
            chosen.append({"id": account.id, "username": account.username})
    return chosen, found


def _delete_deliveries(session: Session, webhook_ids: list[str]) -> None:
    # Both engines: no reliance on SQLite enforcing the foreign keys' cascades.
    delivery_ids = select(WebhookDelivery.id).where(WebhookDelivery.webhook_id.in_(webhook_ids))
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id.in_(webhook_ids)))


def _delivery_views(session: Session, rows: list[WebhookDelivery]) -> list[DeliveryView]:
    attempts: dict[str, list[AttemptView]] = {row.id: [] for row in rows}
    if rows:
        for attempt in session.scalars(select(WebhookAttempt).where(
                WebhookAttempt.delivery_id.in_(list(attempts)))
                .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)):
            attempts[attempt.delivery_id].append(AttemptView(
                attempted_at=attempt.attempted_at, duration_ms=attempt.duration_ms,
                status_code=attempt.status_code, error=attempt.error,
                response_excerpt=attempt.response_excerpt))
    return [DeliveryView(id=row.id, webhook_id=row.webhook_id, message_id=row.message_id,
                         type=row.type, status=row.status, attempts=attempts[row.id],
                         next_attempt_at=row.next_attempt_at if row.status == "pending"
                         else None,
                         created_at=row.created_at, delivered_at=row.delivered_at,
                         payload=row.payload)
            for row in rows]


def _tell(work: ExperimentWrite, user: UserClaim, where: WorkspaceGrant, kind: str, what: str,
          row: Webhook) -> None:
    """Put a change of a webhook in the org's feed (for its members) and audit log: its id,
    kind, events and shown URL, never a secret."""
    work.feed(where.org_id, kind, f"{user.name} {what} {where.name}", where.id, "members",
              audited={"workspace": where.name, "webhook_id": row.id, "kind": row.kind,
                       "url": row.url, "events": list(row.events or []),
                       "active": row.active})


def _noun(row: Webhook) -> str:
    return {"slack": "Slack notification", "email": "email notification"}.get(row.kind,
                                                                               "webhook")


def _user(claim: str) -> UserClaim:
    user = claims.verify(claim)
    if user.anonymous:
        raise Unauthorized("sign in or send an API token to manage webhooks")
    if not user.allows(SCOPE):
        raise Forbidden(f"the credential lacks the {SCOPE} scope")
    return user


def _manager_by_name(claim: str, org: str, workspace: str
                     ) -> tuple[UserClaim, WorkspaceGrant]:
    user = _user(claim)
    where = grants.by_name(claim, org, workspace)
    if not where.allows(MANAGE):
        raise Forbidden("only the workspace's maintainers and owners manage its webhooks")
    return user, where


def _managed(claim: str, webhook_id: Any) -> tuple[UserClaim, WorkspaceGrant, Webhook]:
    """The webhook, if the caller manages its workspace's webhooks: NotFound when they may
    not see that workspace, Forbidden when they may see it but not manage them."""
    user = _user(claim)
    with transaction(SERVICE) as session:
        row = _row(session, webhook_id)
        session.expunge(row)
    try:
        where = grants.by_id(claim, row.workspace_id)
    except (NotFound, Forbidden) as exc:
        raise NotFound("no such webhook") from exc
    if not where.allows("read"):
        raise NotFound("no such webhook")
    if not where.allows(MANAGE):
        raise Forbidden("only the workspace's maintainers and owners manage its webhooks")
    return user, where, row


def _sending_to(hook: Webhook) -> None:
    # The workers send nothing to a webhook that is off: a delivery asked for would wait.
    if not hook.active:
        raise Conflict("the webhook is turned off: turn it on to send it anything")


def _row(session: Session, webhook_id: Any, lock: bool = False) -> Webhook:
    if not isinstance(webhook_id, str) or len(webhook_id) > 36:
        raise NotFound("no such webhook")
    query = select(Webhook).where(Webhook.id == webhook_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound("no such webhook")
    return row


def _url_problems(url: Any, kind: str) -> list[dict[str, str]]:
    allow_private = current_app.config["ALLOW_PRIVATE_TARGETS"]
    message = webhook_targets.url_problem(url, allow_private)
    if message:
        return [problem("url", message)]
    if kind == "slack" and not allow_private:
        parts = urlsplit(url)
        if parts.scheme != "https" or (parts.hostname or "").lower() != SLACK_HOST:
            return [problem("url", f"a Slack incoming webhook URL (https://{SLACK_HOST}/...)")]
    return []


def _event_problems(events: Any) -> list[dict[str, str]]:
    if not isinstance(events, list) or not events:
        return [problem("events", "name one event type or more")]
    return [problem(("events", i), f"one of {', '.join(notifications.EVENT_TYPES)}")
            for i, name in enumerate(events) if name not in notifications.EVENT_TYPES]


def _description_problems(description: str) -> list[dict[str, str]]:
    if len(description) > 500:
        return [problem("description", "a description is at most 500 characters")]
    return []


def _unique(events: list[str]) -> list[str]:
    return list(dict.fromkeys(events))

