"""Sending what notifications.py owes: by the workers, never in a web request.

Each worker process runs a thread that takes the deliveries that are due, one at a time as it
sends them (up to BATCH a round), with up to SENDERS of them in flight, so that a receiver that
hangs holds up one sender, not every delivery behind it. A delivery is leased (a conditional
update of its `lease_until`, and on PostgreSQL the rows are taken FOR UPDATE SKIP LOCKED), so
several workers never send the same one at once, and one whose worker died is taken again once
its lease ends.
Each attempt is logged with its answer's code (or the error), its time and duration. A failed
one is tried again after the next delay of SCHEDULE (times WEBHOOK_RETRY_SCALE), about a day in
all, then given up; a refused target (SSRF) is given up at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import delete, or_, select, update
from standardwebhooks import Webhook as Signer

from chaoshub.core import metrics, process_thread
from chaoshub.core.db import transaction
from chaoshub.core.errors import first_line
from chaoshub.core.models import utcnow
from chaoshub.experiment import (
    email_notices,
    journals,
    secret_box,
    slack_messages,
    webhook_targets,
)
from chaoshub.experiment.models import Webhook, WebhookAttempt, WebhookDelivery

SERVICE = "experiment"
EXTENSION = "chaoshub.webhook_delivery"
# Seconds after a failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (a day and a bit).
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
BATCH = 10  # deliveries one worker takes in a round
SENDERS = 4  # deliveries one worker sends at once
KEEP_DAYS = 30  # how long the log keeps a delivery that was delivered or given up
PRUNE_SECONDS = 3600.0  # how often a worker removes those
PRUNE_BATCH = 1000  # removed in one transaction, batch after batch until none is left
USER_AGENT = "ChaosHub-Webhooks/1"
log = logging.getLogger(__name__)


def secret_context(webhook_id: str, what: str) -> str:
    """What a webhook's sealed value is bound to: it opens only as this webhook's `what`."""
    return f"webhook/{webhook_id}/{what}"


def deliver_due(limit: int = BATCH) -> int:
    """Send the deliveries that are due, `limit` at most, SENDERS at a time; how many were
    attempted."""
    tried: list[str] = []
    lock = threading.Lock()

    def next_one() -> str | None:
        # One lease at a time, taken as it is sent: a lease lasts one attempt, and those left
        # behind slow receivers would run out and be sent by another worker as well. Once
        # each a round: a retry due at once waits for the next.
        with lock:
            taken = _lease(1, tried) if len(tried) < limit else []
            tried.extend(taken)
            return taken[0] if taken else None

    def send_until_none(first: str | None) -> None:
        delivery_id = first
        while delivery_id is not None:
            try:
                attempt(delivery_id)
            except Exception:  # one delivery's trouble must not hold back the others
                log.exception("webhook delivery %s: the attempt failed", delivery_id)
            delivery_id = next_one()

    first = next_one()
    if first is None:
        return 0  # most rounds: no thread is started for nothing
    # Beside this thread, more senders, as many as there is to send: each goes on with the
    # next due when its own is sent.
    app = current_app._get_current_object()
    helpers: list[threading.Thread] = []
    try:
        while len(helpers) < SENDERS - 1 and (more := next_one()) is not None:
            helpers.append(threading.Thread(target=_helper, args=(app, send_until_none, more),
                                            name="chaoshub-webhook-sender", daemon=True))
            helpers[-1].start()
        send_until_none(first)
    finally:
        for helper in helpers:
            helper.join()
    return len(tried)


def _helper(app: Flask, send_until_none, first: str) -> None:
    with app.app_context():
        try:
            send_until_none(first)
        except Exception as exc:  # the database away: what is left waits for the next round
            log.warning("webhook deliveries wait for the next round: %s", first_line(exc))


def _lease_seconds() -> float:
    # Long enough for every hop of one attempt to time out connecting and reading.
    return 2 * current_app.config["WEBHOOK_TIMEOUT_SECONDS"] * (
        webhook_targets.MAX_REDIRECTS + 1) + 30


def _lease(limit: int, tried: list[str] | None = None) -> list[str]:
    now = utcnow()
    until = now + timedelta(seconds=_lease_seconds())
    free = or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now)
    due = [WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now, free,
           WebhookDelivery.webhook_id.in_(select(Webhook.id).where(Webhook.active.is_(True)))]
    if tried:
        due.append(WebhookDelivery.id.not_in(tried))
    taken = []
    with transaction(SERVICE) as session:
        # PostgreSQL: rows another worker is leasing are skipped, not waited on. SQLite has one
        # writer at a time: the conditional update below is what keeps two workers apart.
        ids = list(session.scalars(select(WebhookDelivery.id).where(*due)
                                   .order_by(WebhookDelivery.next_attempt_at,
                                             WebhookDelivery.id)
                                   .limit(limit).with_for_update(skip_locked=True)))
        for delivery_id in ids:
            if session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                                             free)
                               .values(lease_until=until)).rowcount:
                taken.append(delivery_id)
    return taken


def attempt(delivery_id: str) -> bool:
    """Send one leased delivery once and log the attempt; True when it was delivered."""
    with transaction(SERVICE) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        hook = session.get(Webhook, delivery.webhook_id) if delivery is not None else None
        if delivery is None or hook is None:
            return False
        session.expunge_all()
    answer = _send(hook, delivery)
    _record(delivery, answer)
    metrics.webhook_delivery("delivered" if answer.ok else "failed")
    return answer.ok


def _send(hook: Webhook, delivery: WebhookDelivery) -> webhook_targets.Answer:
    config = current_app.config
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if hook.kind == "email":
        return email_notices.send(hook, delivery)
    try:
        if hook.kind == "slack":
            url = secret_box.open_sealed(hook.url_sealed or "", secret_context(hook.id, "url"))
            body = json.dumps(slack_messages.message(delivery.type, delivery.payload))
        else:
            url = hook.url
            secret = secret_box.open_sealed(hook.secret_sealed or "",
                                            secret_context(hook.id, "secret"))
            body = json.dumps(envelope(delivery), separators=(",", ":"))
            headers.update(signed_headers(secret, delivery.message_id, body))
    except secret_box.SecretUnreadable as exc:
        return webhook_targets.Answer(None, error=f"the webhook's secret cannot be opened: {exc}")
    return webhook_targets.post(url, body.encode(), headers, config["WEBHOOK_TIMEOUT_SECONDS"],
                                config["ALLOW_PRIVATE_TARGETS"])


def envelope(delivery: WebhookDelivery) -> dict[str, Any]:
    """A webhook's body: the Standard Webhooks shape (type, timestamp, data)."""
    return {"type": delivery.type, "timestamp": _iso(delivery.occurred_at),
            "data": delivery.payload}


def signed_headers(secret: str, message_id: str, body: str,
                   when: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of a body signed with `secret` ("whsec_..."), now."""
    when = when or utcnow()
    return {"webhook-id": message_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Signer(secret).sign(message_id, when, body)}


def _record(delivery: WebhookDelivery, answer: webhook_targets.Answer) -> None:
    now = utcnow()
    values: dict[str, Any] = {"attempts": WebhookDelivery.attempts + 1, "lease_until": None}
    if answer.ok:
        values.update(status="delivered", delivered_at=now, next_attempt_at=None)
    elif answer.refused or delivery.retries >= len(SCHEDULE):
        values.update(status="failed", next_attempt_at=None)
    else:
        delay = SCHEDULE[delivery.retries] * current_app.config["WEBHOOK_RETRY_SCALE"]
        values.update(retries=delivery.retries + 1,
                      next_attempt_at=now + timedelta(seconds=delay))
    with transaction(SERVICE) as session:
        if session.get(WebhookDelivery, delivery.id) is None:
            return  # its webhook was deleted meanwhile
        # Without NULs (what a receiver answers is any bytes): a column refuses them.
        session.add(WebhookAttempt(delivery_id=delivery.id, attempted_at=now,
                                   duration_ms=answer.duration_ms, status_code=answer.status,
                                   error=journals.text(answer.error, 500),
                                   response_excerpt=journals.text(
                                       answer.excerpt, webhook_targets.EXCERPT_BYTES)))
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id)
                        .values(**values))


def prune(now: datetime | None = None) -> int:
    """Remove the deliveries (and their attempts) that ended more than KEEP_DAYS ago; how
    many went."""
    before = (now or utcnow()) - timedelta(days=KEEP_DAYS)
    old = select(WebhookDelivery.id).where(WebhookDelivery.status != "pending",
                                           WebhookDelivery.created_at < before)
    removed = 0
    while True:
        # One batch a transaction: no lock held long; more than a batch an hour is kept up with.
        with transaction(SERVICE) as session:
            ids = list(session.scalars(old.limit(PRUNE_BATCH)))
            if ids:
                session.execute(delete(WebhookAttempt).where(
                    WebhookAttempt.delivery_id.in_(ids)))
                session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
        removed += len(ids)
        if len(ids) < PRUNE_BATCH:
            return removed


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# The workers' thread -------------------------------------------------------------------------


def start(app: Flask) -> None:
    """Start this process's delivery thread (a worker's), once per process."""
    process_thread.start_in(app, EXTENSION, "chaoshub-webhooks", _run)


def stop(app: Flask) -> None:
    """Stop this process's delivery thread and wait for its round to end."""
    process_thread.stop_in(app, EXTENSION)


def _run(app_ref: weakref.ref, stopped: threading.Event) -> None:
    failures = 0
    pruned = 0.0
    while not stopped.is_set():
        app = app_ref()  # weak: an app that is gone (tests make many) ends its thread
        if app is None:
            return
        every = float(app.config["WEBHOOK_POLL_SECONDS"])
        busy = False
        with app.app_context():
            try:
                busy = deliver_due() == BATCH  # a full batch: more may be due at once
                if time.monotonic() - pruned > PRUNE_SECONDS:
                    pruned = time.monotonic()
                    prune()
                failures = 0
            except Exception as exc:  # the database away: the next round tries again
                failures += 1
                log.warning("webhook deliveries wait for the next round: %s",
                            first_line(exc))
        del app
        if not busy:
            stopped.wait(min(60.0, every * 2 ** failures))
