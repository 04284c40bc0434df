"""What happened in an org: its activity feeds (to read, and for other services to add to) and
its audit log (to read, page through and check)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from chaoshub.core import claims, paging
from chaoshub.core.db import transaction
from chaoshub.core.errors import NotFound
from chaoshub.dashboard import activity, audit, permissions, store
from chaoshub.dashboard.interface import interface
from chaoshub.dashboard.models import Org, Workspace
from chaoshub.dashboard.public.access import (
    org_access,
    org_reader,
    roles,
    signed_in,
    workspace_access,
)
from chaoshub.dashboard.schemas import (
    ActivityPage,
    AuditPage,
    AuditView,
    ChainBreak,
    NewActivity,
)
from chaoshub.dashboard.store import SERVICE

AUDIT_LISTING = "audit log"  # the listing's name, signed into its cursors
# What other services may write into audit logs: their own kinds of event (experiment's runs,
# environments, webhooks and schedules), never one that would pass for dashboard's or auth's.
OTHER_SERVICES_AUDIT = ("run.", "environment.", "webhook.", "schedule.", "repository.")
log = logging.getLogger(__name__)


# Activity --------------------------------------------------------------------------------------


@interface.public(callers=("experiment",))
def record_activities(entries: list[NewActivity]) -> int:
    """Add the entries another service's outbox holds to their orgs' feeds (and, for those
    with `audited`, their audit logs) in one transaction; how many were added. An entry added
    before (the same outbox id) adds nothing again, and one that is not valid is logged and
    left out without holding back the others."""
    # No user claim: the calling service (checked by the interface) authorized each change
    # when it made it. Its word is taken for who did it, not for where: each entry stays in
    # its org's workspace.
    valid = [entry for entry in entries if not _logged_problem(entry, _entry_problem(entry))]
    if not valid:
        return 0
    with transaction(SERVICE) as session:
        valid = _in_their_orgs(session, valid)
        added = activity.record_delivered(session, valid)
        # Each audit entry once, with the feed entry it goes with; every writer takes the
        # chains in the order of their orgs (two cannot deadlock), each org's in the order
        # its entries happened.
        for entry in sorted((e for e in valid if e.audited is not None and e.id in added),
                            key=lambda e: e.org_id):
            audit.append(session, entry.org_id, entry.actor_id, entry.kind, entry.audited)
    return len(added)


@interface.public
def activity_feed(claim: str, cursor: str | None = None, limit: int | None = None
                  ) -> ActivityPage:
    """The signed-in user's feed: their orgs' entries and their own, newest first."""
    user = org_reader(signed_in(claim))
    with transaction(SERVICE) as session:
        return activity.page(session, activity.user_feed(user), cursor, limit)


@interface.public
def org_activity(claim: str, org: str, cursor: str | None = None, limit: int | None = None
                 ) -> ActivityPage:
    """An org's feed, with only the entries the claim may see."""
    user = org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        found, role, _ = org_access(user, store.find_org(session, org), "read")
        held = roles(user, found.id)
        return activity.page(session, activity.org_feed(user, found.id, role is not None,
                                                        list(held.workspaces) if held else []),
                             cursor, limit)


@interface.public(callers=("experiment",))
def workspace_activity(
    claim: str, org: str, workspace: str, cursor: str | None = None, limit: int | None = None
) -> ActivityPage:
    """A workspace's feed, to those who may read the workspace."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        _, ws, role = workspace_access(session, user, org, workspace, "read")
        return activity.page(session, activity.workspace_feed(user, ws.id, role is not None),
                             cursor, limit)


def _entry_problem(entry: NewActivity) -> str | None:
    if not entry.kind or not entry.summary:
        return "a kind and a summary are needed"
    if entry.scope is not None and entry.scope not in activity.SCOPES:
        return "its scope is not one of " + ", ".join(activity.SCOPES)
    if entry.scope in ("readers", "executions") and not entry.workspace_id:
        return f"the scope {entry.scope!r} needs a workspace"
    if (problem := activity.subject_problem(entry.subject)) is not None:
        return "its subject is not " + problem
    if entry.subject and not entry.subject.startswith("member:") and not entry.workspace_id:
        return "an experiment needs a workspace"
    if entry.audited is not None and not entry.kind.startswith(OTHER_SERVICES_AUDIT):
        return "other services audit only their own kinds of event"
    return None


def _in_their_orgs(session: Session, entries: list[NewActivity]) -> list[NewActivity]:
    # One query for the workspaces of the batch, one for the orgs of entries without one.
    workspace_ids = {e.workspace_id for e in entries if e.workspace_id}
    org_of: dict[str, str] = {}
    if workspace_ids:
        org_of = dict(session.execute(select(Workspace.id, Workspace.org_id)
                                      .where(Workspace.id.in_(workspace_ids))).all())
    bare = {e.org_id for e in entries if not e.workspace_id}
    orgs = set(session.scalars(select(Org.id).where(Org.id.in_(bare)))) if bare else set()
    kept = []
    for entry in entries:
        if entry.workspace_id:
            problem = None if org_of.get(entry.workspace_id) == entry.org_id \
                else "no such workspace in this org"
        else:
            problem = None if entry.org_id in orgs else "no such org"
        if not _logged_problem(entry, problem):
            kept.append(entry)
    return kept


def _logged_problem(entry: NewActivity, problem: str | None) -> bool:
    if problem is None:
        return False
    # No retry would mend it: it is dropped, not left to hold back the entries after it.
    log.warning("feed entry %s (%s) not recorded: %s", entry.id, entry.kind[:40], problem)
    return True


# Audit -----------------------------------------------------------------------------------------


@interface.public
def audit_log(
    claim: str, org: str, event: str | None = None, since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditView]:
    """An org's audit log, oldest first, filtered by event prefix and time (owners)."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        found, role, _ = org_access(user, store.find_org(session, org), "read")
        permissions.check_audit(user, role)
        return audit.entries(session, found.id, event, since, until)


@interface.public
def audit_page(
    claim: str, org: str, event: str | None = None, since: datetime | None = None,
    until: datetime | None = None, cursor: str | None = None, limit: int | str | None = None,
) -> AuditPage:
    """A page of an org's audit log, oldest first, filtered by event prefix and time (owners)."""
    user = claims.verify(claim)
    limit = paging.page_size(limit)
    with transaction(SERVICE) as session:
        found, role, _ = org_access(user, store.find_org(session, org), "read")
        permissions.check_audit(user, role)
        filters = [found.id, event, since and since.isoformat(), until and until.isoformat()]
        after_id = None
        if cursor:
            # Entry ids grow with the chain: the last id shown is the whole position.
            position = paging.decode(cursor, AUDIT_LISTING, filters)
            if len(position) != 1 or type(position[0]) is not int:
                raise paging.bad_cursor()
            after_id = position[0]
        rows = audit.entries(session, found.id, event, since, until, limit + 1, after_id)
    if len(rows) <= limit:
        return AuditPage(entries=rows)
    return AuditPage(entries=rows[:limit],
                     next_cursor=paging.encode(AUDIT_LISTING, filters, [rows[limit - 1].id]))


def verify_audit_chains(org: str | None = None) -> list[ChainBreak]:
    """The first broken entry of every org's audit chain (or one org's); empty when intact."""
    # Not public: the `chaoshub audit verify` command runs it with the database at hand.
    with transaction(SERVICE) as session:
        org_id = None
        if org:
            found = store.find_org(session, org)
            if found is None:
                raise NotFound(f"no org named {org!r}")
            org_id = found.id
        return audit.verify(session, org_id)
