"""An experiment write's unit of work: the feed entries that tell of it go into experiment's
feed outbox in its own transaction, and dashboard takes them from there after the commit
(feed_outbox.py): a feed that is away, or refuses an entry, never undoes the write."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from chaoshub.core.claims import UserClaim
from chaoshub.core.unit_of_work import UnitOfWork
from chaoshub.experiment import feed_outbox

SERVICE = "experiment"
log = logging.getLogger(__name__)


class ExperimentWrite(UnitOfWork):
    """One change to experiment's database, with the feed entries that tell of it."""

    def __init__(self, session, actor: str | None = None):
        super().__init__(session, actor)
        self._entries: list[dict[str, Any]] = []

    def feed(self, org_id: str, kind: str, summary: str, workspace_id: str | None = None,
             scope: str | None = None, outsider_summary: str | None = None,
             audited: dict[str, Any] | None = None, subject: str | None = None) -> None:
        """Add an entry by the actor to the org's feed (and with `audited`, its audit log),
        written into the outbox with the change and delivered after its commit; `subject` is
        what the entry links to (see dashboard's NewActivity)."""
        if self.actor is None:
            raise TypeError("a feed entry needs the actor of the write")
        if not self._entries:
            self.write_last(lambda session: feed_outbox.add(session, self._entries))
            self.after_commit(feed_outbox.committed)
        self._entries.append(feed_outbox.entry(
            self.actor, org_id, kind, summary, workspace_id, scope, outsider_summary, audited,
            subject))


def write(user: UserClaim) -> AbstractContextManager[ExperimentWrite]:
    """A unit of work by the claim's user in a new transaction on experiment's database."""
    return ExperimentWrite.open(SERVICE, user.sub)


def record_activity(actor: str, org_id: str, kind: str, summary: str,
                    workspace_id: str | None = None, scope: str | None = None,
                    outsider_summary: str | None = None,
                    audited: dict[str, Any] | None = None, subject: str | None = None) -> None:
    """Add an entry by `actor` to an org's feed for a change committed already, through the
    outbox in a small transaction of its own; a database that refuses it is logged, never
    raised: the change stands."""
    try:
        with ExperimentWrite.open(SERVICE, actor) as work:
            work.feed(org_id, kind, summary, workspace_id, scope, outsider_summary, audited,
                      subject)
    except SQLAlchemyError as exc:
        log.warning("%s (%s): activity not recorded: %s", kind, subject or org_id,
                    str(exc).splitlines()[0][:200])
