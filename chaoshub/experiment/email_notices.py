"""Notifications as mail: a subject, a text and an HTML body with a link to the run (or the
experiment), sent to the workspace's members who opted in and have a verified address, or to
the members a maintainer chose. An attempt of webhook_delivery.py, like a webhook's: retried on
its schedule, logged with the SMTP server's answer, redelivered from the log."""

from __future__ import annotations

import smtplib
import time
from typing import Any

from flask import current_app

from chaoshub.auth import service as auth
from chaoshub.core import mail
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment.models import Webhook, WebhookDelivery
from chaoshub.experiment.webhook_targets import Answer

SUBJECTS = {
    "run.started": "A run of {title} started",
    "run.finished": "A run of {title} passed",
    "run.deviated": "A run of {title} deviated",
    "run.failed": "A run of {title} failed ({outcome})",
    "run.aborted": "A run of {title} was aborted",
    "run.interrupted": "A run of {title} was interrupted",
    "run.refused": "A run of {title} was refused",
    "schedule.skipped": "A scheduled run of {title} was skipped",
    "killswitch.engaged": "The kill switch was engaged",
    "killswitch.released": "The kill switch was released",
    "experiment.changed": "The experiment {title} changed",
    "ping": "ChaosHub says hello: this email notification works",
}
# Envelope recipients only: nobody learns the others' addresses.
UNDISCLOSED = "undisclosed-recipients:;"


def message(type: str, data: dict[str, Any], workspace: str) -> mail.Message:
    """The mail of a notification of `type` with `data` (a delivery's payload)."""
    run = data.get("run") if isinstance(data.get("run"), dict) else {}
    experiment = data.get("experiment") if isinstance(data.get("experiment"), dict) else {}
    title = str(run.get("experiment_title") or experiment.get("title")
                or data.get("experiment_title") or "an experiment")
    headline = SUBJECTS.get(type, f"ChaosHub: {type}").format(
        title=title, outcome=str(run.get("outcome") or "error"))
    link = run.get("url") or experiment.get("url") or ""
    details = []
    if run.get("reason") or data.get("reason"):
        details.append(("Reason", str(run.get("reason") or data.get("reason"))[:500]))
    if run.get("started_by"):
        details.append(("Started by", str(run["started_by"])))
    if data.get("changed_by"):
        details.append(("Changed by", str(data["changed_by"])))
    return mail.render("notification", to=UNDISCLOSED, subject=f"[{workspace}] {headline}"[:200],
                       headline=headline, link=link, details=details, workspace=workspace,
                       label="Open the run" if run.get("url") else "Open the experiment")


def recipients(hook: Webhook) -> list[str]:
    """The addresses a notification of `hook` goes to now: of its chosen members still in the
    workspace, or of the members who opted in; verified ones only."""
    members = set(dashboard.workspace_member_ids(hook.workspace_id))
    if hook.recipients:
        chosen = [r["id"] for r in hook.recipients if r.get("id") in members]
        return auth.notification_addresses(chosen, chosen=True)
    return auth.notification_addresses(sorted(members))


def send(hook: Webhook, delivery: WebhookDelivery) -> Answer:
    """Mail one notification; the answer as the delivery log keeps it."""
    config = current_app.config
    if not mail.enabled(config):
        return Answer(None, error="this hub sends no mail (SMTP_HOST is not set)", refused=True)
    started = time.monotonic()
    addresses = recipients(hook)
    if not addresses:
        return Answer(None, excerpt="nobody to send it to: no member with a verified address "
                      "asked for it", delivered=True)
    where = f"{hook.org_name}/{hook.workspace_name}"
    composed = mail.compose(message(delivery.type, delivery.payload or {}, where),
                            config["MAIL_FROM"])
    try:
        with mail.connect(config) as smtp:
            refused = smtp.send_message(composed, to_addrs=addresses)
    except (smtplib.SMTPException, OSError) as exc:
        return Answer(None, error=mail.reason(exc), duration_ms=_since(started))
    took = len(addresses) - len(refused)
    note = f"sent to {took} address(es)" + (f", {len(refused)} refused" if refused else "")
    return Answer(250, excerpt=note, duration_ms=_since(started), delivered=True)


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
