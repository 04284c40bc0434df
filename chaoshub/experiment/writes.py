"""An experiment write's unit of work: the feed entries that tell of it are asked of dashboard
once it is committed, and a feed that cannot take them never undoes it."""

from __future__ import annotations

import functools
import logging
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from chaoshub.core.claims import UserClaim
from chaoshub.core.errors import HubError
from chaoshub.core.unit_of_work import UnitOfWork
from chaoshub.dashboard import service as dashboard

SERVICE = "experiment"
log = logging.getLogger(__name__)


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
    try:
        dashboard.record_activity(claim, org_id, kind, summary, workspace_id, scope,
                                  outsider_summary, audited, subject)
    except (HubError, SQLAlchemyError) as exc:
        # The change is kept: a feed missing an entry must not turn the write into an error
        # (and a retry would only find the change made already).
        log.warning("%s: activity not recorded: %s", about, exc)
