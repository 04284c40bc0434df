"""Notifications: what a workspace's webhooks hear of, owed in the transaction of the change.

`announce` is the one way in: it writes a delivery for each of the workspace's active webhooks
subscribed to the type, in the caller's session (one SELECT by workspace, one INSERT), so a
notification exists exactly when its change does and nothing waits for a receiver. The workers
send them (webhook_delivery.py). Runs announce their changes of status here (`run_changed`),
dashboard's kill switch events are announced when experiment handles them, and other features
(schedules) call `announce` with their own types.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import quote

from flask import current_app, has_app_context
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from chaoshub.core.models import new_id, utcnow
from chaoshub.experiment.models import Experiment, Run, Webhook, WebhookDelivery

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "run.started", "run.finished", "run.deviated", "run.failed", "run.aborted",
    "run.interrupted", "run.refused", "schedule.skipped", "killswitch.engaged",
    "killswitch.released", "experiment.changed",
)
# What a journal's outcome says of the run (journals.OUTCOMES).
OUTCOME_EVENTS = {
    "passed": "run.finished", "deviated": "run.deviated", "probe-error": "run.failed",
    "baseline-not-met": "run.failed", "aborted": "run.aborted",
    "interrupted": "run.interrupted",
}
# What a run that ended without a journal says.
STATUS_EVENTS = {"aborted": "run.aborted", "interrupted": "run.interrupted",
                 "refused": "run.refused"}
_deliveries = WebhookDelivery.__table__


def announce(session: Session, workspace_id: str, type: str, payload: dict[str, Any]) -> int:
    """Owe a notification of `type` with `payload` (JSON) to each active webhook of the
    workspace subscribed to it, in the caller's transaction; how many are owed."""
    hooks = session.execute(select(Webhook.id, Webhook.events, Webhook.org_name,
                                   Webhook.workspace_name)
                            .where(Webhook.workspace_id == workspace_id,
                                   Webhook.active.is_(True))).all()
    hooks = [hook for hook in hooks if type in (hook.events or [])]
    if not hooks:
        return 0
    # Plain JSON whatever the caller gave (datetimes as text): a value JSON cannot hold must
    # not fail the change it tells of.
    data = json.loads(json.dumps(payload, default=str))
    now = utcnow()
    message = f"msg_{uuid.uuid4().hex}"
    rows = [{"id": new_id(), "webhook_id": hook.id, "message_id": message, "type": type,
             "payload": _with_links(data, hook.org_name, hook.workspace_name),
             "occurred_at": now, "status": "pending", "attempts": 0, "retries": 0,
             "next_attempt_at": now, "lease_until": None, "created_at": now,
             "delivered_at": None}
            for hook in hooks]
    session.execute(insert(_deliveries), rows[0] if len(rows) == 1 else rows)
    return len(rows)


def run_changed(session: Session, run: Run | Any, type: str, outcome: str | None = None) -> None:
    """Announce `type` for `run` (a row, or one read with its columns) in the caller's
    session; an error making the notification is logged, never raised: the run goes on."""
    try:
        title = session.scalar(select(Experiment.title).where(
            Experiment.id == run.experiment_id)) or ""
        announce(session, run.workspace_id, type, run_payload(run, title, outcome))
    except (KeyError, TypeError, ValueError, AttributeError):
        log.exception("run %s: the %s notification could not be made", run.id, type)


def run_payload(run: Run | Any, title: str, outcome: str | None = None) -> dict[str, Any]:
    """What a run's notification says of it."""
    return {"run": {
        "id": run.id, "experiment_id": run.experiment_id, "experiment_title": title,
        "workspace_id": run.workspace_id, "status": run.status, "origin": run.origin,
        "reason": run.reason or "", "outcome": outcome, "execution_id": run.execution_id,
        "started_by": run.created_by_name, "started_at": run.started_at,
        "finished_at": run.finished_at,
    }}


def run_events_by_ids(session: Session, run_ids: list[str], type: str) -> None:
    """Announce `type` for each of these runs (those a bulk change just ended)."""
    if not run_ids:
        return
    for row in session.scalars(select(Run).where(Run.id.in_(run_ids))):
        run_changed(session, row, type)


def _with_links(data: dict[str, Any], org: str, workspace: str) -> dict[str, Any]:
    """`data` with the addresses of the run and experiment pages it names, under PUBLIC_URL."""
    base = current_app.config.get("PUBLIC_URL", "") if has_app_context() else ""
    where = f"{base}/{quote(org, safe='')}/{quote(workspace, safe='')}"
    linked = dict(data)
    run = data.get("run")
    if isinstance(run, dict) and run.get("experiment_id") and org:
        experiment = f"{where}/experiment/{run['experiment_id']}"
        linked["run"] = {**run, "url": f"{experiment}/run/{run.get('id')}"}
    experiment = data.get("experiment")
    if isinstance(experiment, dict) and experiment.get("id") and org:
        linked["experiment"] = {**experiment, "url": f"{where}/experiment/{experiment['id']}"}
    return linked
