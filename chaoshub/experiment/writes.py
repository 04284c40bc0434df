"""An experiment write's unit of work: the feed entries that tell of it are asked of dashboard
once it is committed, and a feed that cannot take them never undoes it; one that is away for a
moment (its database restarting) gets them a little later."""

from __future__ import annotations

import functools
import logging
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from chaoshub.core import claims
from chaoshub.core.claims import UserClaim
from chaoshub.core.errors import DATABASE_AWAY, HubError, ServiceUnavailable
from chaoshub.core.unit_of_work import UnitOfWork
from chaoshub.dashboard import service as dashboard

SERVICE = "experiment"
log = logging.getLogger(__name__)
RETRY_EVERY = 0.5  # seconds between two attempts at an entry the feed could not take
RETRIES_AT_ONCE = 32  # entries waiting for their retry in one process, at most
_retrying = threading.BoundedSemaphore(RETRIES_AT_ONCE)


class ExperimentWrite(UnitOfWork):
    """One change to experiment's database, and the feed entries dashboard adds after it."""

    def __init__(self, session, actor: str | None = None, claim: str = ""):
        super().__init__(session, actor)
        self.claim = claim

    def feed(self, about: str, org_id: str, kind: str, summary: str,
             workspace_id: str | None = None, scope: str | None = None,
             outsider_summary: str | None = None,
             audited: dict[str, Any] | None = None, subject: str | None = None) -> None:
        """Add an entry to the org's feed (and with `audited`, its audit log) once the change is
        committed; `about` (e.g. "experiment <id>") names the change in the warning logged if
        the feed refuses it, `subject` what the entry links to (see dashboard's
        record_activity)."""
        self.after_commit(functools.partial(
            record_activity, self.claim, about, org_id, kind, summary, workspace_id, scope,
            outsider_summary, audited, subject))


def write(user: UserClaim, claim: str) -> AbstractContextManager[ExperimentWrite]:
    """A unit of work by the claim's user in a new transaction on experiment's database."""
    return ExperimentWrite.open(SERVICE, user.sub, claim)


def record_activity(claim: str, about: str, org_id: str, kind: str, summary: str,
                    workspace_id: str | None = None, scope: str | None = None,
                    outsider_summary: str | None = None,
                    audited: dict[str, Any] | None = None, subject: str | None = None) -> None:
    """Add an entry to an org's feed (dashboard's) for a change already made; a refusal is
    logged as about `about`, never raised."""
    def call(claim: str) -> None:
        dashboard.record_activity(claim, org_id, kind, summary, workspace_id, scope,
                                  outsider_summary, audited, subject)

    try:
        call(claim)
    except (ServiceUnavailable, *DATABASE_AWAY) as exc:
        # Dashboard's database is away for a moment (a restart): the change is made, so is
        # its entry, a little later, while the claim that asks for it is still valid.
        _retry_later(call, claim, about, exc)
    except (HubError, SQLAlchemyError) as exc:
        # The change is kept: a feed missing an entry must not turn the write into an error
        # (and a retry would only find the change made already).
        log.warning("%s: activity not recorded: %s", about, exc)


def _retry_later(call, claim: str, about: str, exc: Exception) -> None:
    try:
        # Signed now if it is this request's handle: the retries run outside the request.
        claim = claims.portable(claim)
    except HubError as refused:
        log.warning("%s: activity not recorded: %s (%s)", about, exc, refused)
        return
    if not _retrying.acquire(blocking=False):
        log.warning("%s: activity not recorded (too many waiting): %s", about, exc)
        return
    app = current_app._get_current_object()
    # Three quarters of a claim's life: the last attempt still carries a valid one.
    deadline = time.monotonic() + app.config["CLAIM_TTL"] * 0.75
    log.warning("%s: activity not recorded yet, trying again: %s", about,
                str(exc).splitlines()[0][:200])
    retry = functools.partial(call, claim)
    threading.Thread(target=_retry, args=(app, retry, about, deadline), daemon=True,
                     name="feed-entry-retry").start()


def _retry(app, call: functools.partial, about: str, deadline: float) -> None:
    try:
        while True:
            time.sleep(RETRY_EVERY)
            with app.app_context():
                try:
                    call()
                    log.info("%s: activity recorded on a later attempt", about)
                    return
                except (ServiceUnavailable, *DATABASE_AWAY) as exc:
                    if time.monotonic() > deadline:
                        log.warning("%s: activity not recorded: %s", about, exc)
                        return
                except (HubError, SQLAlchemyError) as exc:
                    log.warning("%s: activity not recorded: %s", about, exc)
                    return
    finally:
        _retrying.release()
