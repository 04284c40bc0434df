"""A dashboard write's unit of work: its feed and audit entries go into its own transaction."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.orm import Session

from chaoshub.core.unit_of_work import UnitOfWork
from chaoshub.dashboard import activity, audit
from chaoshub.dashboard.interface import outbox
from chaoshub.dashboard.store import SERVICE


class DashboardWrite(UnitOfWork):
    """One change to dashboard's database, with the feed and audit entries that tell of it."""

    outbox = outbox

    def feed(self, org_id: str, kind: str, summary: str, workspace_id: str | None = None,
             scope: str | None = None, outsider_summary: str | None = None,
             subject: str | None = None) -> None:
        """Add an entry to the org's activity feed, written with the change (`subject`: what
        it is about, see activity.record)."""
        self.write_last(lambda session: activity.record(
            session, org_id, self.actor, kind, summary, workspace_id, scope, outsider_summary,
            subject))

    def audit(self, org_id: str, event: str, details: dict[str, Any] | None = None) -> None:
        """Add an entry to the org's audit log, written with the change."""
        self.write_last(lambda session: audit.append(session, org_id, self.actor, event,
                                                     details))


def write(actor: str | None) -> AbstractContextManager[DashboardWrite]:
    """A unit of work by `actor` (an account id) in a new transaction on dashboard's database."""
    return DashboardWrite.open(SERVICE, actor)


def joining(session: Session, actor: str | None = None) -> AbstractContextManager[DashboardWrite]:
    """A unit of work in the transaction of an event's delivery, which commits it."""
    return DashboardWrite.joining(session, actor)
